import Foundation
import LatticeDomain
import NIOCore
import Testing

@testable import LatticeGateway

final class ManualClock: WallClock, @unchecked Sendable {
    var current = Date(timeIntervalSince1970: 1_800_000_000)
    func now() -> Date { current }
    func sleep(until deadline: Date) async throws { current = max(current, deadline) }
}

@Suite(.timeLimit(.minutes(10))) struct GatewayTests {
    @Test func hostsNameAnInstanceByUID() {
        let hosts = GatewayHosts(publicHost: "gpu.example.com")
        let uid = "5556ea07-d418-4fb7-a2b3-f77b171f9e2d"
        #expect(hosts.uid(host: "\(uid).gpu.example.com") == uid)
        #expect(hosts.uid(host: "\(uid.uppercased()).GPU.example.com:8080") == uid)
        #expect(hosts.uid(host: "gpu.example.com") == nil)
        #expect(hosts.uid(host: "not-a-uid.gpu.example.com") == nil)
        #expect(hosts.uid(host: "\(uid).evil.com") == nil)
        #expect(hosts.uid(host: "x.\(uid).gpu.example.com") == nil)
    }

    @Test func theForwardedHeadClosesAfterOneRequestUnlessItUpgrades() throws {
        let plain = try #require(
            RequestHead(
                "GET /jupyter/lab?token=t HTTP/1.1\r\nHost: u.h\r\nConnection: keep-alive\r\nX-Forwarded-For: 6.6.6.6"
            )
        )
        let sent = plain.forwarded(clientAddress: "10.0.0.9")
        #expect(sent.hasPrefix("GET /jupyter/lab?token=t HTTP/1.1\r\nHost: u.h\r\n"))
        #expect(sent.contains("Connection: close\r\n") && !sent.contains("keep-alive") && !sent.contains("6.6.6.6"))
        #expect(sent.contains("X-Forwarded-For: 10.0.0.9\r\n") && sent.hasSuffix("\r\n\r\n"))
        #expect(plain.path == "/jupyter/lab")
        let upgrade = try #require(
            RequestHead(
                "GET /jupyter/api/kernels/1/channels HTTP/1.1\r\nHost: u.h\r\nUpgrade: websocket\r\nConnection: Upgrade"
            )
        )
        #expect(upgrade.forwarded(clientAddress: "").contains("Connection: Upgrade\r\n"))
        #expect(RequestHead("GARBAGE") == nil)
        #expect(RequestHead("GET / HTTP/2\r\n") == nil)
    }

    @Test func theLastHeaderKeepsItsValue() throws {
        // "\r\n" is one Character in Swift: the head is cut in bytes, never in Characters.
        let head = try #require(RequestHead("POST /jupyter/x HTTP/1.1\r\nHost: u.h\r\nContent-Length: 16777216"))
        #expect(head.value("content-length") == "16777216")
        #expect(head.forwarded(clientAddress: "").contains("Content-Length: 16777216\r\n"))
    }

    @Test func theHeadsEndIsFound() {
        #expect(RequestHead.end(in: ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody")) == 27)
        #expect(RequestHead.end(in: ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n")) == nil)
    }

    @Test func aHeadThatArrivesByteByByteIsScannedOnce() {
        let head = "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"
        var buffer = ByteBuffer()
        var scanned = 0
        var found: Int?
        for byte in head.utf8 {
            buffer.writeInteger(byte)
            found = RequestHead.end(in: buffer, scanned: scanned)
            if found != nil { break }
            scanned = buffer.readableBytes
        }
        // The end straddles reads: the three bytes before the new one are looked at again.
        #expect(found == 27 && buffer.readableBytes == 27)
    }

    @Test func failuresAreFreeThenSlowedThenForgiven() {
        let clock = ManualClock()
        let throttle = AuthThrottle(clock: clock)
        // A client that waits for each answer before it tries again.
        func tryAndWait(_ address: String) -> TimeInterval {
            let wait = throttle.failed(address)
            clock.current += wait
            return wait
        }
        #expect((0..<3).map { _ in tryAndWait("1.2.3.4") } == [0, 0, 0])
        #expect(tryAndWait("1.2.3.4") == 0.5)
        #expect(tryAndWait("1.2.3.4") == 1)
        #expect(tryAndWait("5.6.7.8") == 0, "another address is not slowed")
        for _ in 0..<10 { _ = tryAndWait("1.2.3.4") }
        #expect(tryAndWait("1.2.3.4") == 8, "capped")
        clock.current += 601
        #expect(tryAndWait("1.2.3.4") == 0, "the window has passed")
        for _ in 0..<5 { _ = tryAndWait("1.2.3.4") }
        throttle.succeeded("1.2.3.4")
        #expect(tryAndWait("1.2.3.4") == 0)
    }

    @Test func failuresOnManyConnectionsAtOnceAreAnsweredOneAfterTheOther() {
        let clock = ManualClock()
        let throttle = AuthThrottle(clock: clock)
        for _ in 0..<3 { _ = throttle.failed("1.2.3.4") }
        // Ten connections fail at the same instant: their answers queue, 0.5 + 1 + 2 + 4 + 8 + 8 ...
        let waits = (0..<10).map { _ in throttle.failed("1.2.3.4") }
        #expect(waits == [0.5, 1.5, 3.5, 7.5, 15.5, 23.5, 31.5, 39.5, 47.5, 55.5])
        #expect(throttle.failed("1.2.3.4") == 60, "no answer is queued further than the longest wait")
        #expect(throttle.failed("9.9.9.9") == 0)
    }

    @Test func passwordsCompareInFullAndForwardsStayInside() {
        #expect(SSHAuthenticator.constantTimeEquals("secret", "secret"))
        #expect(!SSHAuthenticator.constantTimeEquals("secret", "secret2"))
        #expect(!SSHAuthenticator.constantTimeEquals("", "x"))
        let target = AccessTarget(
            name: "instance-0000abcd",
            uid: "u",
            namespace: "alice",
            cluster: "c",
            sshPassword: "p",
            status: "Running"
        )
        #expect(
            PortForward.meansInstance("localhost", target) && PortForward.meansInstance("instance-0000abcd", target)
        )
        #expect(!PortForward.meansInstance("10.88.0.1", target) && !PortForward.meansInstance("example.com", target))
    }

    @Test func theHostKeyIsMadeOnceAndKept() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("ssh_host_ed25519_key")
        let first = try HostKey.loadOrCreate(at: path)
        let again = try HostKey.loadOrCreate(at: path)
        #expect(first.fingerprint == again.fingerprint && first.fingerprint.hasPrefix("SHA256:"))
        let mode = try FileManager.default.attributesOfItem(atPath: path.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(first.openSSHPublicKey.hasPrefix("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"))
        try Data("garbage".utf8).write(to: path)
        #expect(throws: HostKeyError.self) { try HostKey.loadOrCreate(at: path) }
    }
}
