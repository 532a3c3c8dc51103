import Foundation
import Hummingbird
import LatticeDomain

/// Builds JSON responses; all encoding goes through here so slashes stay unescaped and the
/// content type is always set.
enum JSONResponse {
    /// How every JSON answer is written.
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }

    static func encode<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    /// JSON rendered already (the instance cache).
    static func raw(_ json: Data) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: json))
        )
    }

    /// A month's statement as a CSV download (the API's `?format=csv` and the console's link).
    static func csv(_ statement: StatementWire) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/csv; charset=utf-8",
                .contentDisposition: "attachment; filename=\"statement-\(statement.month).csv\"",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: statement.csv))
        )
    }

    /// The seed's acknowledgement: the JSON string `"ok"`.
    static var ok: Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: "\"ok\""))
        )
    }

    static func error(_ error: LatticeError) -> Response {
        let body = (try? JSONEncoder().encode(ErrorWire(code: error.code, message: error.message))) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfter = error.retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(
            status: HTTPResponse.Status(code: error.kind.status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body))
        )
    }
}

extension Request {
    /// Reads the body (at most the context's upload limit) as JSON.
    func jsonBody(context: LatticeRequestContext) async throws -> JSONValue {
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        return try JSONValue.parseBody(Data(buffer.readableBytesView))
    }
}
