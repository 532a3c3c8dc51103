import ArgumentParser
import Foundation
import LatticeDomain
import LatticeServer
import Logging

/// `lattice serve`: runs the control plane.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Lattice server (SQLite and a simulated GPU fleet by default)."
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on; 0 picks a free one.") var port = 8080
    @Option(help: "Directory for the database and state.") var dataDir = ".lattice"
    @Option(help: "PostgreSQL URL (postgres://...) instead of SQLite.") var databaseURL: String?
    @Option(help: "Catalog YAML file (regions, clusters, nodes, SKUs, images); read again on SIGHUP.")
    var catalog: String?
    @Option(help: "The currency every amount is in (ISO 4217), shown wherever money is.") var currency = "CNY"
    @Option(help: "Host name used in Jupyter, Tensorboard and SSH addresses (default: localhost).") var publicHost:
        String?
    @Option(help: "Prefix of annotation keys.") var annotationDomain = "lattice.local"
    @Option(help: "UTC offset or zone name for times on the wire (UTC, +08:00, Asia/Shanghai).") var timezone = "UTC"
    @Option(help: "Range of SSH ports handed to instances, as LOW-HIGH.") var sshPorts = "30000-32767"
    @Option(help: "The SSH gateway's shared port, where the login name is the instance's name (0 = none).")
    var sshGatewayPort = 2222
    @Flag(help: "Show 'ssh -p<shared port> <instance>@<host>' in sshAddr and open no per-instance SSH listeners.")
    var sshGatewaySharedForm = false
    @Option(help: "One SSH listener to which the firewall redirects the --ssh-ports range (0 = one per port).")
    var sshGatewayRedirectPort = 0
    @Option(help: "Seconds an SSH connection has to sign in.") var sshPreauthTimeoutSeconds: Double = 30
    @Option(help: "Port of the HTTP gateway to Jupyter and Tensorboard (default: the API's port, by Host; 0 = off).")
    var httpGatewayPort: Int?
    @Option(help: "Address the gateways listen on (default: --host).") var gatewayHost: String?
    @Option(help: "The SSH gateway's host key file (default: <data-dir>/ssh_host_ed25519_key, made on first start).")
    var sshHostKey: String?
    @Option(
        help: ArgumentHelp(
            "The key file instance secrets are sealed with (default: <data-dir>/seal.key, made on first start).",
            discussion: "LATTICE_SEAL_KEY (32 bytes in base64) takes precedence. Every replica needs the same key."
        )
    )
    var sealKeyFile: String?
    @Option(help: "Scale factor for the simulated fleet's start and stop delays.") var simulatedDelayScale: Double = 1
    @Option(help: "Length of a pay-as-you-go charge period, in seconds (the platform charges hourly).")
    var chargePeriodSeconds: Double = 3600
    @Option(help: "How often the meter charges and enforces terms, in seconds.") var meterIntervalSeconds: Double = 10
    @Option(help: "Days a Stopped instance keeps its data before it is released.") var retentionDays: Double = 15
    @Option(help: "Seconds pay-as-you-go instances keep running after the wallet runs out.") var depletionGraceSeconds:
        Double = 600
    @Option(help: "Seconds between full reconcile resyncs (the safety net; writes and driver events drive the work).")
    var resyncSeconds: Double = 60
    @Option(help: "Log level (trace, debug, info, notice, warning, error).") var logLevel = "info"
    @Option(help: "Log lines on standard error: json (one object per line) or text.") var logFormat = "json"
    @Option(help: "TLS certificate chain (PEM) for the API, the console and the HTTP gateway; needs --tls-key.")
    var tlsCert: String?
    @Option(help: "The certificate's private key (PEM).") var tlsKey: String?
    @Option(help: "Scheme of the links tenants are given: http or https (default: https with --tls-cert).")
    var publicScheme: String?
    @Option(help: "Port of the links tenants are given, when a front proxy serves the gateway (443 behind Caddy).")
    var publicGatewayPort: Int?
    @Flag(help: "Let webhooks POST to loopback, private and link-local addresses (refused by default).")
    var webhookAllowPrivate = false
    @Option(help: "Debian's node-xterm directory, whose xterm.js the console's web terminal serves.")
    var xtermDir = "/usr/share/nodejs/xterm"
    @Option(help: "Default quota: instances a namespace may keep (an admin can set its own).")
    var quotaInstances = Quota.defaults.instances
    @Option(help: "Default quota: GPUs a namespace may hold at once.") var quotaGpus = Quota.defaults.gpus
    @Option(help: "Default quota: API tokens a namespace may have.") var quotaTokens = Quota.defaults.tokens
    @Option(help: "Default quota: snapshot images a namespace may keep.") var quotaSnapshots = Quota.defaults.snapshots
    @Option(help: "Requests per second one API token may make (0 = no limit).") var rateLimitPerToken: Double = 50
    @Option(help: "Requests one API token may make in a burst.") var rateLimitBurst: Double = 200
    @Option(help: "Requests per second from one address without a valid token, burst 5x (0 = no limit).")
    var rateLimitPerAddress: Double = 10
    @Option(help: "Console sign-in attempts per minute from one address, burst 10 (0 = no limit).")
    var signInsPerMinute: Double = 10
    @Option(help: "Connections one client address may hold open (0 = no cap).") var maxConnectionsPerAddress = 256
    @Option(help: "Seconds an idle connection is kept open.") var idleTimeoutSeconds: Double = 60
    @Option(help: "Seconds a new connection has to send a complete request head.") var headerTimeoutSeconds: Double = 10

    func run() async throws {
        // Everything the server creates (data directory, database, bootstrap.json, fleet
        // state) holds secrets or their hashes: private from the first byte.
        umask(0o077)
        if let databaseURL, !(databaseURL.hasPrefix("postgres://") || databaseURL.hasPrefix("postgresql://")) {
            throw ValidationError("--database-url: expected postgres://user:password@host:5432/database?sslmode=prefer")
        }
        guard let time = TimeFormatter(zone: timezone) else {
            throw ValidationError(
                "--timezone: '\(timezone)' is not UTC, an offset like +08:00 or a zone name like Asia/Shanghai"
            )
        }
        let bounds = sshPorts.split(separator: "-").compactMap { Int($0) }
        guard bounds.count == 2, bounds[0] >= 1, bounds[0] <= bounds[1], bounds[1] <= 65535 else {
            throw ValidationError("--ssh-ports: expected LOW-HIGH such as 30000-32767")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port: must be between 0 and 65535") }
        guard chargePeriodSeconds >= 1 else { throw ValidationError("--charge-period-seconds: must be at least 1") }
        guard meterIntervalSeconds >= 0.01 else {
            throw ValidationError("--meter-interval-seconds: must be at least 0.01")
        }
        guard resyncSeconds >= 0.1, resyncSeconds <= 86400 else {
            throw ValidationError("--resync-seconds: must be between 0.1 and 86400")
        }
        guard retentionDays >= 0 else { throw ValidationError("--retention-days: must not be negative") }
        guard depletionGraceSeconds >= 0 else {
            throw ValidationError("--depletion-grace-seconds: must not be negative")
        }
        let loadedCatalog: Catalog
        do {
            loadedCatalog = try catalog.map(CatalogLoader.load(path:)) ?? .builtIn
        } catch let error as LatticeError {
            throw ValidationError("--catalog: \(error.message)")
        }
        guard (0...65535).contains(sshGatewayPort) else {
            throw ValidationError("--ssh-gateway-port: must be between 0 and 65535")
        }
        if sshGatewaySharedForm, sshGatewayPort == 0 {
            throw ValidationError("--ssh-gateway-shared-form needs a --ssh-gateway-port")
        }
        guard (0...65535).contains(sshGatewayRedirectPort) else {
            throw ValidationError("--ssh-gateway-redirect-port: must be between 0 and 65535")
        }
        guard (1...3600).contains(sshPreauthTimeoutSeconds) else {
            throw ValidationError("--ssh-preauth-timeout-seconds: must be between 1 and 3600")
        }
        if let httpGatewayPort, !(0...65535).contains(httpGatewayPort) {
            throw ValidationError("--http-gateway-port: must be between 0 and 65535")
        }
        var configuration = ServerConfiguration(
            host: host,
            port: port,
            dataDirectory: URL(fileURLWithPath: dataDir),
            catalog: loadedCatalog,
            publicHost: publicHost,
            annotationDomain: annotationDomain,
            time: time,
            sshPorts: bounds[0]...bounds[1],
            bootstrapToken: ProcessInfo.processInfo.environment["LATTICE_BOOTSTRAP_TOKEN"],
            simulatedDelayScale: simulatedDelayScale,
            chargePeriod: chargePeriodSeconds,
            meterInterval: .milliseconds(Int64(meterIntervalSeconds * 1000)),
            retention: retentionDays * 86400,
            depletionGrace: depletionGraceSeconds,
            resyncInterval: .milliseconds(Int64(resyncSeconds * 1000))
        )
        configuration.databaseURL = databaseURL
        configuration.catalogPath = catalog
        guard currency.count == 3, currency.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
            throw ValidationError("--currency: a three-letter ISO 4217 code such as CNY, USD or EUR")
        }
        configuration.currency = currency
        switch (tlsCert, tlsKey) {
        case (let cert?, let key?):
            for (flag, path) in [("--tls-cert", cert), ("--tls-key", key)]
            where !FileManager.default.isReadableFile(atPath: path) {
                throw ValidationError("\(flag): cannot read \(path)")
            }
            configuration.tls = TLSFiles(certificate: cert, key: key)
        case (nil, nil): break
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
        if let publicScheme, !["http", "https"].contains(publicScheme) {
            throw ValidationError("--public-scheme: http or https")
        }
        configuration.publicScheme = publicScheme
        if let publicGatewayPort, !(1...65535).contains(publicGatewayPort) {
            throw ValidationError("--public-gateway-port: must be between 1 and 65535")
        }
        configuration.publicGatewayPort = publicGatewayPort
        configuration.xtermDirectory = xtermDir
        configuration.webhookAllowPrivate = webhookAllowPrivate
        if let key = ProcessInfo.processInfo.environment["LATTICE_SEAL_KEY"], !key.isEmpty {
            configuration.sealKey = .base64(key)
        } else if let sealKeyFile {
            configuration.sealKey = .file(sealKeyFile)
        }
        configuration.gateways.sshPort = sshGatewayPort
        configuration.gateways.sshSharedForm = sshGatewaySharedForm
        configuration.gateways.httpPort = httpGatewayPort
        configuration.gateways.host = gatewayHost
        configuration.gateways.hostKeyPath = sshHostKey
        configuration.gateways.sshRedirectPort = sshGatewayRedirectPort
        configuration.gateways.sshPreAuthTimeout = .milliseconds(Int64(sshPreauthTimeoutSeconds * 1000))
        for (flag, value) in [
            ("--quota-instances", quotaInstances), ("--quota-gpus", quotaGpus), ("--quota-tokens", quotaTokens),
            ("--quota-snapshots", quotaSnapshots),
        ] where !(0...Quota.maximum).contains(value) {
            throw ValidationError("\(flag): must be between 0 and \(Quota.maximum)")
        }
        configuration.limits.defaultQuota = Quota(
            instances: quotaInstances,
            gpus: quotaGpus,
            tokens: quotaTokens,
            snapshots: quotaSnapshots
        )
        for (flag, value) in [
            ("--rate-limit-per-token", rateLimitPerToken), ("--rate-limit-burst", rateLimitBurst),
            ("--rate-limit-per-address", rateLimitPerAddress), ("--sign-ins-per-minute", signInsPerMinute),
        ] where !(0...1_000_000).contains(value) {
            throw ValidationError("\(flag): must be between 0 and 1000000")
        }
        configuration.limits.perToken = TokenBucket.Limit(rate: rateLimitPerToken, burst: rateLimitBurst)
        configuration.limits.perAddress = TokenBucket.Limit(rate: rateLimitPerAddress, burst: rateLimitPerAddress * 5)
        configuration.limits.signIn = TokenBucket.Limit(rate: signInsPerMinute / 60, burst: 10)
        guard maxConnectionsPerAddress >= 0 else {
            throw ValidationError("--max-connections-per-address: must be 0 or more")
        }
        guard (0.1...86400).contains(idleTimeoutSeconds), (0.1...86400).contains(headerTimeoutSeconds) else {
            throw ValidationError("--idle-timeout-seconds, --header-timeout-seconds: must be between 0.1 and 86400")
        }
        configuration.limits.connectionsPerAddress = maxConnectionsPerAddress
        configuration.limits.idleTimeout = .milliseconds(Int64(idleTimeoutSeconds * 1000))
        configuration.limits.headerTimeout = .milliseconds(Int64(headerTimeoutSeconds * 1000))
        configuration.limits.openFileLimit = Int(clamping: OpenFileLimit.raiseToHardLimit())
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level: one of trace, debug, info, notice, warning, error")
        }
        switch logFormat {
        case "json": LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
        case "text": LoggingSystem.bootstrap(StreamLogHandler.standardError)
        default: throw ValidationError("--log-format: json or text")
        }
        var logger = Logger(label: "lattice")
        logger.logLevel = level
        let app = try await CompositionRoot.buildApplication(configuration: configuration, logger: logger)
        defer { LogLines.standardError.flush() }
        try await app.runService()
    }
}
