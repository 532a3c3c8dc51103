import Foundation
import LatticeDomain

/// Everything `lattice serve` is configured with; built from flags in one place.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Where SQLite, the simulated fleet's state and `bootstrap.json` live.
    public var dataDirectory: URL
    /// `postgres://…`: the store is PostgreSQL (shared by replicas) instead of SQLite in
    /// the data directory.
    public var databaseURL: String?
    /// Where instance secrets are sealed from: a key in base64 (`LATTICE_SEAL_KEY`), else a
    /// key file (`--seal-key-file`), else `<data-dir>/seal.key`, made on first start.
    public var sealKey: SealKeySource = .dataDirectory
    public var catalog: Catalog
    /// The file `catalog` was read from (`--catalog`), read again on SIGHUP; nil for the
    /// built-in catalog.
    public var catalogPath: String?
    /// The host name put in Jupyter, Tensorboard and SSH addresses.
    public var publicHost: String
    public var annotationDomain: String
    public var time: TimeFormatter
    /// Ports handed out for SSH, one per live instance.
    public var sshPorts: ClosedRange<Int>
    /// How often the reconciler compares every instance with its workload (`--resync-seconds`);
    /// the safety net, not the engine: writes and driver events drive it.
    public var resyncInterval: Duration
    /// The admin token to create on first start instead of a generated one.
    public var bootstrapToken: String?
    public var currency: String
    /// Scales the simulated fleet's start and stop delays (tests use small values).
    public var simulatedDelayScale: Double
    /// Pay-as-you-go usage is charged in periods of this length (the platform: one hour).
    public var chargePeriod: TimeInterval
    /// How often the meter charges, stops expired terms and releases expired data.
    public var meterInterval: Duration
    /// How long a Stopped instance keeps its data.
    public var retention: TimeInterval
    /// How long pay-as-you-go instances keep running after the wallet runs out.
    public var depletionGrace: TimeInterval
    /// Quotas, rate limits and connection limits (docs/operations.md, "Limits").
    public var limits = ServerLimits()
    /// The gateways into instances (docs/access.md).
    public var gateways = GatewayConfiguration()
    /// A certificate and key (PEM files) to serve the API, the console and the HTTP
    /// gateway over TLS; nil serves plain HTTP.
    public var tls: TLSFiles?
    /// The scheme in the links tenants are given (`https` behind a TLS front proxy);
    /// nil: `https` with `tls`, else `http`.
    public var publicScheme: String?
    /// The port in those links when tenants reach the gateway through a front proxy
    /// (443 behind Caddy); nil: the gateway's own port.
    public var publicGatewayPort: Int?
    /// Debian's `node-xterm` module directory, whose xterm.js the console's web terminal
    /// serves (its stylesheet from `libjs-xterm` beside it).
    public var xtermDirectory = "/usr/share/nodejs/xterm"
    /// How often this replica writes its gateways' use of instances to the store, for the
    /// leader's idle clocks (SPEC §12).
    public var activityReportInterval: Duration = .seconds(10)
    /// Whether webhooks may point at loopback, private or link-local addresses
    /// (`--webhook-allow-private`; SPEC §13).
    public var webhookAllowPrivate = false
    /// How often an event stream with nothing to say sends a heartbeat comment.
    public var eventHeartbeat: Duration = .seconds(15)

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        dataDirectory: URL = URL(fileURLWithPath: ".lattice"),
        catalog: Catalog = .builtIn,
        publicHost: String? = nil,
        annotationDomain: String = "lattice.local",
        time: TimeFormatter = TimeFormatter(),
        sshPorts: ClosedRange<Int> = 30000...32767,
        bootstrapToken: String? = nil,
        currency: String = "CNY",
        simulatedDelayScale: Double = 1,
        chargePeriod: TimeInterval = 3600,
        meterInterval: Duration = .seconds(10),
        retention: TimeInterval = 15 * 86400,
        depletionGrace: TimeInterval = 600,
        resyncInterval: Duration = .seconds(60)
    ) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.catalog = catalog
        self.publicHost = publicHost ?? "localhost"
        self.annotationDomain = annotationDomain
        self.time = time
        self.sshPorts = sshPorts
        self.resyncInterval = resyncInterval
        self.bootstrapToken = bootstrapToken
        self.currency = currency
        self.simulatedDelayScale = simulatedDelayScale
        self.chargePeriod = chargePeriod
        self.meterInterval = meterInterval
        self.retention = retention
        self.depletionGrace = depletionGrace
    }

    /// The wire context once the server knows the port it bound (`--port 0` picks one).
    func wireContext(boundPort: Int?) -> WireContext {
        let httpPort: Int? =
            switch gateways.httpPort {
            case _ where publicGatewayPort != nil: publicGatewayPort
            case nil: boundPort ?? port
            case 0: nil
            case let own?: own
            }
        return WireContext(
            annotationDomain: annotationDomain,
            time: time,
            publicHost: publicHost,
            retention: retention,
            httpGatewayPort: httpPort,
            sshSharedPort: gateways.sshSharedForm && gateways.sshPort > 0 ? gateways.sshPort : nil,
            gatewayScheme: publicScheme ?? (tls == nil ? "http" : "https")
        )
    }

    /// Whether the SSH gateway opens a listener per instance port (neither the shared form
    /// shown nor the range redirected to one port).
    public var perInstanceSSHListeners: Bool { !gateways.sshSharedForm && gateways.sshRedirectPort == 0 }

    /// How the open-file limit is shared out; nil when it was not measured (tests).
    public var descriptorBudget: DescriptorBudget? { limits.openFileLimit.map(DescriptorBudget.init) }

    /// The SSH ports that creates and power_ons may take: with per-instance listeners, no
    /// more than the descriptor budget lets the gateway listen on.
    var allocatableSSHPorts: ClosedRange<Int>? {
        guard let budget = descriptorBudget else { return sshPorts }
        return budget.allocatableSSHPorts(sshPorts, perInstanceListeners: perInstanceSSHListeners)
    }

    /// When metered usage falls due, for the store and the meter alike.
    public var meterSchedule: MeterSchedule { MeterSchedule(period: chargePeriod, timeZone: time.timeZone) }
}

/// Where the SSH and HTTP gateways listen (`lattice serve` flags; docs/access.md).
public struct GatewayConfiguration: Sendable {
    /// The SSH gateway's shared port, where the login name picks the instance
    /// (`--ssh-gateway-port`, default 2222; 0 = none).
    public var sshPort = 2222
    /// `--ssh-gateway-shared-form`: `sshAddr` shows `ssh -p<shared port> <instance>@<host>`
    /// and no per-instance listeners are opened.
    public var sshSharedForm = false
    /// `--http-gateway-port`: nil = on the API's own port, routed by `Host`; 0 = off (an
    /// Ingress or front proxy does the job); otherwise a port of its own.
    public var httpPort: Int?
    /// `--gateway-host`: where the gateways listen (default: the API's `--host`).
    public var host: String?
    /// `--ssh-gateway-redirect-port`: one SSH listener to which the host's firewall redirects
    /// the whole `--ssh-ports` range (docs/access.md); 0 = a listener per instance port.
    public var sshRedirectPort = 0
    /// `--ssh-preauth-timeout-seconds`: an SSH connection that has not signed in by then is closed.
    public var sshPreAuthTimeout: Duration = .seconds(30)
    /// `--ssh-host-key`: the SSH gateway's host key file (default
    /// `<data-dir>/ssh_host_ed25519_key`, made on first start); replicas share one.
    public var hostKeyPath: String?

    public init() {}
}

/// The limits that keep one tenant or one client from hurting the others; each is a flag
/// of `lattice serve` (docs/operations.md, "Limits").
public struct ServerLimits: Sendable {
    /// A namespace's quota until an admin sets its own (`--quota-*`).
    public var defaultQuota = Quota.defaults
    /// Requests per second of one API token (`--rate-limit-per-token`, burst
    /// `--rate-limit-burst`); 0 turns it off.
    public var perToken = TokenBucket.Limit(rate: 50, burst: 200)
    /// Requests per second from one address without a valid token: failed sign-ins to the
    /// API, `/metrics`, `/readyz`, `/openapi.json` (`--rate-limit-per-address`); `/healthz` is never limited.
    public var perAddress = TokenBucket.Limit(rate: 10, burst: 50)
    /// Console sign-in attempts per minute from one address (`--sign-ins-per-minute`).
    public var signIn = TokenBucket.Limit(rate: 10.0 / 60, burst: 10)
    /// Connections one address may hold open (`--max-connections-per-address`); 0 = no cap.
    public var connectionsPerAddress = 256
    /// A connection idle this long is closed (`--idle-timeout-seconds`).
    public var idleTimeout: Duration = .seconds(60)
    /// A new connection must send a complete request head within this
    /// (`--header-timeout-seconds`).
    public var headerTimeout: Duration = .seconds(10)
    /// The open-file limit in force (`RLIMIT_NOFILE`, raised to its hard limit at start),
    /// which `DescriptorBudget` shares out; nil = not measured, nothing derived from it.
    public var openFileLimit: Int?

    public init() {}
}

/// Where the key that seals instance secrets at rest comes from. Replicas on one
/// PostgreSQL database must all have the same key.
public enum SealKeySource: Sendable, Equatable {
    /// `<data-dir>/seal.key`, made on first start.
    case dataDirectory
    case file(String)
    /// 32 bytes in base64.
    case base64(String)
}

/// Where the TLS certificate chain and its private key are (PEM).
public struct TLSFiles: Sendable, Equatable {
    public var certificate: String
    public var key: String

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }
}
