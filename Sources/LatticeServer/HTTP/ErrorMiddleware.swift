import Hummingbird
import LatticeDomain
import Logging
import NIOCore

/// Turns every failure into `{"code", "message"}` (SPEC §4). Errors that are not the
/// API's own are logged and answered with a generic 500, never with their text.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = LatticeRequestContext

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as LatticeError {
            return JSONResponse.error(error)
        } catch is NIOTooManyBytesError {
            return JSONResponse.error(
                LatticeError(.payloadTooLarge, code: "PayloadTooLarge", "request body is larger than 1 MiB")
            )
        } catch let error as HTTPError {
            switch error.status {
            case .notFound:
                if let allowed = OpenAPIDocument.methods(forPath: request.uri.path) {
                    var response = JSONResponse.error(
                        LatticeError(
                            .methodNotAllowed,
                            code: "MethodNotAllowed",
                            "\(request.method) is not allowed on \(request.uri.path); use "
                                + allowed.joined(separator: ", ")
                        )
                    )
                    response.headers[.allow] = allowed.joined(separator: ", ")
                    return response
                }
                return JSONResponse.error(
                    LatticeError(.notFound, code: "NotFound", "no route for \(request.method) \(request.uri.path)")
                )
            case .contentTooLarge:
                return JSONResponse.error(
                    LatticeError(.payloadTooLarge, code: "PayloadTooLarge", "request body is larger than 1 MiB")
                )
            default:
                if error.status.code < 500 {
                    return JSONResponse.error(
                        LatticeError(.badRequest, code: "BadRequest", error.body ?? error.status.reasonPhrase)
                    )
                }
                context.logger.error("request failed", metadata: ["error": "\(error)"])
                return JSONResponse.error(
                    LatticeError(.internalError, code: "InternalError", "internal error; see the server log")
                )
            }
        } catch {
            context.logger.error(
                "request failed",
                metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"]
            )
            return JSONResponse.error(
                LatticeError(.internalError, code: "InternalError", "internal error; see the server log")
            )
        }
    }
}
