import Foundation
import LatticeDomain
import Yams

/// Reads a catalog from YAML (`--catalog FILE`); see docs/catalog.md for the format.
public enum CatalogLoader {
    public static func load(path: String) throws -> Catalog {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LatticeError(.badRequest, code: "InvalidCatalog", "cannot read catalog file \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), source: path)
    }

    public static func parse(_ yaml: String, source: String = "catalog") throws -> Catalog {
        let catalog: Catalog
        do {
            catalog = try YAMLDecoder().decode(Catalog.self, from: yaml)
        } catch let error as DecodingError {
            throw LatticeError(.badRequest, code: "InvalidCatalog", "\(source): \(describe(error))")
        } catch {
            throw LatticeError(.badRequest, code: "InvalidCatalog", "\(source): \(error)")
        }
        try catalog.validate()
        return catalog
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(
                in: CharacterSet(charactersIn: ".")
            )
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])): required key is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
