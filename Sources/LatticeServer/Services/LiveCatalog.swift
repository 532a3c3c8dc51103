import Foundation
import LatticeDomain
import Synchronization

/// The catalog the server serves, prices and places by: the catalog file's (re-read on
/// SIGHUP) with the admins' price changes (`PriceChange`, kept in the store) applied in
/// order. Readers take a copy of the current one; a change swaps it whole.
public final class LiveCatalog: Sendable {
    struct State {
        var file: Catalog
        var changes: [PriceChange] = []
        var current: Catalog
        var loadedAt: Date
    }

    private let state: Mutex<State>

    public init(_ file: Catalog, at: Date) {
        state = Mutex(State(file: file, current: file, loadedAt: at))
    }

    public var current: Catalog { state.withLock { $0.current } }

    /// The catalog file's own (what a price change starts from).
    public var file: Catalog { state.withLock { $0.file } }

    /// When the catalog file in force was read.
    public var loadedAt: Date { state.withLock { $0.loadedAt } }

    /// A new catalog file, with the price changes applied over it.
    func replaceFile(_ catalog: Catalog, at: Date) {
        state.withLock {
            $0.file = catalog
            $0.loadedAt = at
            $0.current = catalog.applying($0.changes)
        }
    }

    /// Every price change there is, as the store has them.
    func setChanges(_ changes: [PriceChange]) {
        state.withLock {
            $0.changes = changes
            $0.current = $0.file.applying(changes)
        }
    }
}
