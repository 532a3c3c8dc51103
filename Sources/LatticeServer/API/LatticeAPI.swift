import Foundation
import LatticeCompute
import LatticeDomain
import LatticeStore
import Logging
import Synchronization

/// The API's behaviour, independent of HTTP: validates, decides with the pure domain and
/// writes through the store. Route handlers only translate to and from the wire.
public struct LatticeAPI: Sendable {
    let store: any Store
    /// The catalog file's with the admins' price changes; `catalog` is the one in force now.
    let live: LiveCatalog
    var catalog: Catalog { live.current }
    let fleet: ComputeFleet
    let clock: any WallClock
    let configuration: ServerConfiguration
    /// Verified tokens; evicted here, where tokens are regenerated and deleted, so that
    /// every way in (REST, console) kills an old secret at once.
    let tokenCache = TokenCache()
    /// Instances rendered for the wire, by name and generation.
    let rendered = RenderedInstances()
    /// Wakes the event streams and the webhook sender as events commit (`ChangeFollower`).
    let events = EventHub()
    let logger = Logger(label: "lattice.api")
    /// The port the server bound, once known (addresses in `servers` name it).
    let boundPort: BoundPort

    public init(
        store: any Store,
        fleet: ComputeFleet,
        clock: any WallClock,
        configuration: ServerConfiguration,
        boundPort: BoundPort = BoundPort()
    ) {
        self.boundPort = boundPort
        self.store = store
        self.live = LiveCatalog(configuration.catalog, at: clock.now())
        self.fleet = fleet
        self.clock = clock
        self.configuration = configuration
    }

    var wire: WireContext { configuration.wireContext(boundPort: boundPort.value) }

    /// Paging for lists the API assembles in memory.
    static func page<T: Sendable & Codable>(_ items: [T], _ request: PageRequest) -> Page<T> {
        let slice = items.dropFirst(request.offset).prefix(request.pageSize)
        return Page(
            hasNextPage: request.offset + slice.count < items.count,
            nodes: Array(slice),
            totalCount: items.count
        )
    }

    static func page<T: Sendable & Codable>(_ items: [T], total: Int, _ request: PageRequest) -> Page<T> {
        Page(hasNextPage: request.offset + items.count < total, nodes: items, totalCount: total)
    }
}

/// The port the HTTP server bound, set once it has (with `--port 0`, the one picked).
public final class BoundPort: Sendable {
    private let port = Mutex<Int?>(nil)

    public init() {}

    public var value: Int? { port.withLock { $0 } }

    func set(_ port: Int) { self.port.withLock { $0 = port } }
}
