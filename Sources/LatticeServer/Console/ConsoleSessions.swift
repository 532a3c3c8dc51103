import Crypto
import Foundation
import LatticeDomain
import LatticeStore

/// Signed-in console sessions, keyed by a random id held in an HttpOnly, SameSite=Strict
/// cookie. Each session carries its own CSRF token, the hash of the API token it was opened
/// with (a page view checks that token still exists, so regenerating or deleting it ends
/// the session) and, for one page view, a secret to show once after a redirect.
///
/// Sessions live in the store (`SessionStore`), so a restart or another replica behind the
/// load balancer signs nobody out. The store keys them by the SHA-256 of the id, and a
/// secret kept for the next page view is sealed (AES-GCM) with a key derived from the id
/// itself: neither the database nor its backups can read it or open a session with it.
final class ConsoleSessions: Sendable {
    typealias Session = ConsoleSessionRecord

    static let lifetime: TimeInterval = 12 * 3600
    let store: any Store

    init(store: any Store) { self.store = store }

    func create(_ session: Session, now: Date) async throws -> String {
        let id = Self.randomToken()
        try await store.createSession(idHash: Self.hash(id), session, now: now)
        return id
    }

    func lookup(_ id: String, now: Date) async throws -> Session? {
        try await store.session(idHash: Self.hash(id), now: now)
    }

    func end(_ id: String) async throws { try await store.endSession(idHash: Self.hash(id)) }

    /// Keeps a secret for the session's next page view.
    func reveal(_ secret: TokenWire, in id: String) async throws {
        let sealed = try AES.GCM.seal(try JSONEncoder().encode(secret), using: Self.revealKey(id)).combined!
        try await store.setRevealed(idHash: Self.hash(id), sealed: sealed)
    }

    /// The secret kept for this page view, forgotten as it is read.
    func takeRevealed(_ id: String) async throws -> TokenWire? {
        guard let sealed = try await store.takeRevealed(idHash: Self.hash(id)) else { return nil }
        let box = try AES.GCM.SealedBox(combined: sealed)
        return try JSONDecoder().decode(TokenWire.self, from: try AES.GCM.open(box, using: Self.revealKey(id)))
    }

    static func hash(_ id: String) -> String {
        SHA256.hash(data: Data(id.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A key only the session's cookie gives (the store holds a different hash of it).
    static func revealKey(_ id: String) -> SymmetricKey {
        SymmetricKey(data: SHA256.hash(data: Data(("lattice-console-reveal:" + id).utf8)))
    }

    /// 32 random bytes as hex, for session ids and CSRF tokens.
    static func randomToken() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }
}
