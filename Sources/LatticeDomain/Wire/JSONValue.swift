import Foundation

/// Any JSON value. Requests are decoded into this first, then read field by field, so the
/// seed's lenient scalars are accepted and every error names the exact field.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// How deep a request body may nest arrays and objects. The seed's deepest body is 3.
    public static let maximumDepth = 32

    /// Parses a request body in one pass (linear in its size); an empty body is an empty
    /// object. Bodies nested deeper than `maximumDepth` are refused before anything is built.
    public static func parseBody(_ data: Data) throws -> JSONValue {
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object([:]) }
        var parser = JSONParser(bytes: [UInt8](data), maximumDepth: maximumDepth)
        return try parser.parseDocument()
    }

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Reads fields out of a JSON object with the seed's leniency; every error names the
/// field by its full path (`Cost.GPUSKUID`, `VolumeMount[0].Size`).
public struct JSONFields: Sendable {
    public let path: String
    public let fields: [String: JSONValue]

    public init(_ value: JSONValue, path: String = "") throws {
        guard case .object(let fields) = value else {
            throw LatticeError.invalidField(
                path.isEmpty ? "body" : path,
                "must be a JSON object, got \(value.typeName)"
            )
        }
        self.path = path
        self.fields = fields
    }

    public func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func present(_ key: String) -> JSONValue? {
        guard let value = fields[key], value != .null else { return nil }
        return value
    }

    /// A string; numbers are accepted and written without a fraction.
    public func string(_ key: String) throws -> String? {
        guard let value = present(key) else { return nil }
        switch value {
        case .string(let text): return text
        case .number(let number) where number == number.rounded() && abs(number) < 1e15: return String(Int64(number))
        default: throw LatticeError.invalidField(name(key), "must be a string, got \(value.typeName)")
        }
    }

    public func requiredString(_ key: String, allowEmpty: Bool = false) throws -> String {
        guard let text = try string(key) else { throw LatticeError.missingField(name(key)) }
        if !allowEmpty && text.trimmingCharacters(in: .whitespaces).isEmpty {
            throw LatticeError.invalidField(name(key), "must not be empty")
        }
        return text
    }

    /// An integer given as a JSON integer or a numeric string; `""` counts as absent.
    public func integer(_ key: String) throws -> Int? {
        guard let value = present(key) else { return nil }
        switch value {
        case .number(let number):
            guard number == number.rounded(), abs(number) < 1e15 else {
                throw LatticeError.invalidField(name(key), "must be a whole number, got \(number)")
            }
            return Int(number)
        case .string(let text):
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { return nil }
            guard let number = Int(trimmed) else {
                throw LatticeError.invalidField(name(key), "must be a whole number, got \"\(text)\"")
            }
            return number
        default:
            throw LatticeError.invalidField(name(key), "must be a whole number, got \(value.typeName)")
        }
    }

    /// A boolean given as `true`/`false` or `"true"`/`"True"`/`"false"`/`"False"`; `""` is absent.
    public func boolean(_ key: String) throws -> Bool? {
        guard let value = present(key) else { return nil }
        switch value {
        case .bool(let flag): return flag
        case .string(let text):
            switch text {
            case "": return nil
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            default: throw LatticeError.invalidField(name(key), "must be true or false, got \"\(text)\"")
            }
        default:
            throw LatticeError.invalidField(name(key), "must be true or false, got \(value.typeName)")
        }
    }

    public func object(_ key: String) throws -> JSONFields? {
        guard let value = present(key) else { return nil }
        return try JSONFields(value, path: name(key))
    }

    public func requiredObject(_ key: String) throws -> JSONFields {
        guard let object = try object(key) else { throw LatticeError.missingField(name(key)) }
        return object
    }

    /// An array of objects; a single object is taken as a one-element array.
    public func objects(_ key: String) throws -> [JSONFields]? {
        guard let value = present(key) else { return nil }
        switch value {
        case .array(let items):
            return try items.enumerated().map { try JSONFields($1, path: "\(name(key))[\($0)]") }
        case .object:
            return [try JSONFields(value, path: "\(name(key))[0]")]
        default:
            throw LatticeError.invalidField(name(key), "must be an array of objects, got \(value.typeName)")
        }
    }
}
