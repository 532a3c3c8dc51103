import Crypto
import Foundation
import LatticeDomain

extension LatticeAPI {
    // MARK: SSH keys

    /// `SHA256:<base64 without padding>`, as `ssh-keygen -l` prints it.
    static func fingerprint(_ key: SSHPublicKey) -> String {
        let digest = Data(SHA256.hash(data: key.blob)).base64EncodedString()
        return "SHA256:" + digest.trimmingCharacters(in: CharacterSet(charactersIn: "="))
    }

    func sshKeyWire(_ key: SSHKeyRecord) -> SSHKeyWire {
        SSHKeyWire(
            id: key.id,
            name: key.name,
            fingerprint: key.fingerprint,
            publicKey: key.publicKey,
            createdAt: wire.time.format(key.createdAt)
        )
    }

    public func createSSHKey(principal: Principal, body: JSONValue) async throws -> SSHKeyWire {
        let request = try CreateSSHKeyRequest(json: body)
        var rng = SystemRandomNumberGenerator()
        let record = SSHKeyRecord(
            id: Identifiers.uuid(using: &rng),
            namespace: principal.namespace,
            name: request.name,
            publicKey: request.key.openSSH,
            fingerprint: Self.fingerprint(request.key),
            createdAt: clock.now()
        )
        IdempotencyMiddleware.expect(sshKeyWire(record))
        try await store.createSSHKey(record)
        return sshKeyWire(record)
    }

    public func sshKeys(principal: Principal, page: PageRequest) async throws -> Page<SSHKeyWire> {
        Self.page(try await store.sshKeys(namespace: principal.namespace).map(sshKeyWire), page)
    }

    public func deleteSSHKey(principal: Principal, id: String) async throws {
        try await store.deleteSSHKey(id: id, namespace: principal.namespace)
    }
}
