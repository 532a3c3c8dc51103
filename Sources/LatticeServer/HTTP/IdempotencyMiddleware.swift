import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import LatticeDomain
import LatticeStore
import Synchronization

/// `Idempotency-Key` on every POST of the API (SPEC §3), after authentication because keys
/// are per namespace. The request is identified by method, path, query and body bytes; the
/// decision is `Idempotency.decide`'s, the bookkeeping the store's.
///
/// The request runs inside an `IdempotencyScope`: the write that does its work also writes
/// what it answers (`IdempotencyScope.expect`), so a process killed after that commit but
/// before the answer below is kept leaves a key that a retry answers from (`answerAgain`).
struct IdempotencyMiddleware: RouterMiddleware {
    typealias Context = LatticeRequestContext
    let store: any Store
    let clock: any WallClock
    /// Renders what a committed work answers now (an instance, a wallet).
    let answerAgain: @Sendable (Idempotency.Outcome) async throws -> Response

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard request.method == .post, let key = request.headers[.idempotencyKey] else {
            return try await next(request, context)
        }
        try Idempotency.validate(key)
        let namespace = try context.requirePrincipal().namespace
        var request = request
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        var hasher = SHA256()
        hasher.update(data: Data("\(request.method.rawValue) \(request.uri.description)\n".utf8))
        hasher.update(data: Data(body.readableBytesView))
        let hash = hasher.finalize().map { String(format: "%02x", $0) }.joined()

        switch try await store.claimIdempotencyKey(namespace: namespace, key: key, requestHash: hash, now: clock.now())
        {
        case .replay(let status, let stored):
            var response = JSONResponse.raw(stored)
            response.status = HTTPResponse.Status(code: status)
            response.headers[.idempotentReplayed] = "true"
            return response
        case .reused:
            throw LatticeError(
                .unprocessable,
                code: "IdempotencyKeyReused",
                "Idempotency-Key '\(key.prefix(60))' was used in the last 24 h for another request; use a new key"
            )
        case .inProgress:
            throw LatticeError(
                .conflict,
                code: "IdempotencyKeyInUse",
                "a request with Idempotency-Key '\(key.prefix(60))' is still running; retry shortly",
                retryAfter: 1
            )
        case .answerAgain(let outcome):
            var response = try await answerAgain(outcome)
            response.headers[.idempotentReplayed] = "true"
            return response
        case .claim:
            break
        }
        let response: Response
        do {
            let scope = IdempotencyScope(namespace: namespace, key: key)
            response = try await IdempotencyScope.$current.withValue(scope) { try await next(request, context) }
        } catch {
            try? await store.releaseIdempotencyKey(namespace: namespace, key: key)
            throw error
        }
        guard Idempotency.keeps(status: Int(response.status.code)) else {
            try? await store.releaseIdempotencyKey(namespace: namespace, key: key)
            return response
        }
        // The API's answers are small JSON documents: collect, keep and send them again.
        let collector = BodyCollector()
        try await response.body.write(collector)
        let bytes = collector.data
        try await store.completeIdempotencyKey(
            namespace: namespace,
            key: key,
            status: Int(response.status.code),
            body: Self.withoutSecret(bytes)
        )
        var replayable = response
        replayable.body = ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        return replayable
    }
}

extension IdempotencyMiddleware {
    /// Tells the keyed request being served (if any) that its work answers `value`, as
    /// `JSONResponse.encode` writes it and without a secret, as the answer would be kept.
    static func expect<T: Encodable>(_ value: T) {
        guard let scope = IdempotencyScope.current, let body = try? JSONResponse.encoder.encode(value) else { return }
        scope.expect(.answer(status: 200, body: withoutSecret(body)))
    }

    /// API token secrets are never stored (only their hashes are): an answer that carries
    /// one (`POST /tokens`, `.../regenerate`, `POST /admin/users`) is kept without its
    /// `token`, so a replay shows the token's record and the client regenerates it if the
    /// first answer was lost.
    static func withoutSecret(_ body: Data) -> Data {
        guard var object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any],
            object["token"] != nil
        else { return body }
        object["token"] = nil
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? body
    }
}

/// Collects a response body into memory.
/// (A class, since `finish` consumes the writer it is handed.)
final class BodyCollector: ResponseBodyWriter, Sendable {
    private let collected = Mutex(Data())

    var data: Data { collected.withLock { $0 } }

    func write(_ buffer: ByteBuffer) async throws {
        collected.withLock { $0.append(contentsOf: buffer.readableBytesView) }
    }

    func write(contentsOf buffers: some Sequence<ByteBuffer>) async throws {
        collected.withLock { data in
            for buffer in buffers { data.append(contentsOf: buffer.readableBytesView) }
        }
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

extension HTTPField.Name {
    static let idempotentReplayed = Self("Idempotent-Replayed")!
}
