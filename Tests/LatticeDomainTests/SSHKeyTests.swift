import Foundation
import LatticeDomain
import Testing

/// Keys made by `ssh-keygen` (public halves only).
enum SampleKeys {
    static let ed25519 =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAddCysZZgGCZ7a1QAIsmMbcHCJKfXkWl6zqtDrJ5vsq alice@lap"
        + "top"
    static let ecdsaP384 =
        "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBKg1/6y7Ij4fKPBkY1"
        + "Uu31taVq7JJF36BbaxuyikTsRML6NYfS+sCDtbhJqM50eAbKJPc+7TzkOCwNAtl/dnZsVOMR89n8GzwCGS2yKPRuqj"
        + "8b4GkagUUV4zP5wDOnsPlw== x"
    static let rsa2048 =
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCjE9faRFUF3jpcV+R82zINFDC90htdOv9Rv/0Tv1CB7E80xEA9iQ"
        + "CEVYVLEbIdSdWFvt2jKqNUhG7C2XDHp4IK+dIe6nYFUC36FkxsOZIzC/Ox6D+yn8rr+sfny8PP2/3MB8XaVx8UooZt"
        + "fwfijBoYycetCmGeukWSy4jK3EDJhioCG3N2UxEgv/MUFPhaFdpdtKBGIBHyQ7V85qXr1LVyhqNfldsLWVcPnXyMMO"
        + "JjUm6dYq6kFQITLvylWddhMiK7Sf6vWmXrxqOv6SjOkDwVFCngNyj8jq9U/EEy1rgnSTtTbpaZauVc8Ide4+6EWzzT"
        + "w1Psiz4SByaC+vGNDQIJ y"
    static let rsa1024 =
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDBGXblA8taLz4ekUo7aoRzCAfVKqhkL35HqJNzKVegbQu8V6o5pW"
        + "G8xYZGXyK/gPfwhTOQSzm5UqTQln8W8fBvpKLNZcWt09uu6DIjRtUEBgqs1Cwjh9fieKc5i9MkuhL0ErfyHBaeczGd"
        + "xpkyJlnvJPKTdFnwUTxbUKrgAPYzdw== z"
}

@Suite(.timeLimit(.minutes(10))) struct SSHKeyTests {
    @Test func parsesEveryAlgorithmOpenSSHWrites() throws {
        let ed = try SSHPublicKey(openSSH: SampleKeys.ed25519 + "\n")
        #expect(ed.algorithm == .ed25519 && ed.comment == "alice@laptop" && ed.blob.count == 51)
        #expect(ed.openSSH + " alice@laptop" == SampleKeys.ed25519)
        #expect(try SSHPublicKey(openSSH: SampleKeys.ecdsaP384).algorithm == .ecdsaP384)
        #expect(try SSHPublicKey(openSSH: SampleKeys.rsa2048).algorithm == .rsa)
    }

    @Test func refusesWhatIsNotAKey() {
        let bad = [
            "", "ssh-ed25519", "ssh-dss AAAAB3NzaC1kc3M=", "ssh-ed25519 not-base64!!",
            // The blob says ed25519 but the line says ECDSA.
            SampleKeys.ed25519.replacingOccurrences(of: "ssh-ed25519", with: "ecdsa-sha2-nistp256"),
            // Truncated blob.
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAddCysZZgGCZ7a1",
            SampleKeys.rsa1024,
        ]
        for line in bad {
            #expect(throws: LatticeError.self, "\(line)") { try SSHPublicKey(openSSH: line) }
        }
    }

    @Test func theRequestNamesTheKeyAfterItsComment() throws {
        let body = JSONValue.object(["publicKey": .string(SampleKeys.ed25519)])
        #expect(try CreateSSHKeyRequest(json: body).name == "alice@laptop")
        let named = JSONValue.object(["publicKey": .string(SampleKeys.ed25519), "name": .string("work")])
        #expect(try CreateSSHKeyRequest(json: named).name == "work")
        #expect(throws: LatticeError.self) { try CreateSSHKeyRequest(json: .object([:])) }
    }
}
