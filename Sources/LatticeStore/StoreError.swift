import Foundation

/// Failures the caller is expected to handle (never shown to clients as they are).
public enum StoreError: Error, Equatable {
    /// The generated instance name exists already; the caller draws another.
    case duplicateName
}
