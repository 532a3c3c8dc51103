// swift-tools-version:6.2
import PackageDescription

/// One settings list for every target: Swift 6 language mode, `any` spelled out,
/// warnings are errors.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "lattice",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lattice", targets: ["lattice"]),
        .library(name: "LatticeClient", targets: ["LatticeClient"]),
        .executable(name: "lattice-sdk-example", targets: ["LatticeSDKExample"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-ssh.git", from: "0.15.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // Pure domain: wire types, money, pricing, placement, state machine. Foundation only.
        .target(name: "LatticeDomain", swiftSettings: swiftSettings),
        // The Store protocols, the write set every write is decided as, and the shared types.
        .target(
            name: "LatticeStore",
            dependencies: [
                "LatticeDomain",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Store on SQLite (GRDB), for one server.
        .target(
            name: "LatticeStoreSQLite",
            dependencies: [
                "LatticeDomain", "LatticeStore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The same Store on PostgreSQL (PostgresNIO), for several replicas on one database.
        .target(
            name: "LatticeStorePostgres",
            dependencies: [
                "LatticeDomain", "LatticeStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The ComputeDriver protocol and the simulated GPU fleet.
        .target(name: "LatticeCompute", dependencies: ["LatticeDomain"], swiftSettings: swiftSettings),
        // Real containers on one host through the Docker Engine API (Docker or Podman).
        .target(
            name: "LatticeComputeEngine",
            dependencies: [
                "LatticeDomain", "LatticeCompute",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // Instances as pods on a Kubernetes cluster, over its REST API (docs/kubernetes.md).
        .target(
            name: "LatticeComputeKubernetes",
            dependencies: [
                "LatticeDomain", "LatticeCompute",
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Tests only: a fake Kubernetes API server with a fake kubelet, as a library and as
        // the `lattice-kube-fake` program the black-box tests run.
        .target(
            name: "LatticeKubeFake",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "lattice-kube-fake", dependencies: ["LatticeKubeFake"], swiftSettings: swiftSettings),
        // The SSH gateway (swift-nio-ssh) and the HTTP gateway into instances.
        .target(
            name: "LatticeGateway",
            dependencies: [
                "LatticeDomain", "LatticeCompute",
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP API, auth, reconciler, catalog loading, composition root.
        .target(
            name: "LatticeServer",
            dependencies: [
                "LatticeDomain", "LatticeStore", "LatticeStoreSQLite", "LatticeStorePostgres", "LatticeCompute",
                "LatticeComputeEngine",
                "LatticeComputeKubernetes", "LatticeGateway",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            ],
            // The console's templates, stylesheet and script, compiled into the binary.
            resources: [.embedInCode("Console/Templates"), .embedInCode("Console/Static")],
            swiftSettings: swiftSettings
        ),
        // The Swift SDK: typed calls for every endpoint, over AsyncHTTPClient.
        .target(
            name: "LatticeClient",
            dependencies: [
                "LatticeDomain",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // An example program on the SDK.
        .executableTarget(
            name: "LatticeSDKExample",
            dependencies: ["LatticeClient", "LatticeDomain"],
            path: "Examples/SDKExample",
            swiftSettings: swiftSettings
        ),
        // The one executable: `lattice serve` and the client verbs.
        .executableTarget(
            name: "lattice",
            dependencies: [
                "LatticeServer", "LatticeClient", "LatticeStore", "LatticeStoreSQLite", "LatticeStorePostgres",
                "LatticeDomain", "LatticeComputeEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Fixtures shared by the test targets (never linked into the executable).
        .target(name: "LatticeTestSupport", dependencies: ["LatticeDomain"], swiftSettings: swiftSettings),
        // Tests only: a fresh database on the throwaway PostgreSQL server the test command starts.
        .target(
            name: "LatticeTestDatabase",
            dependencies: [
                "LatticeDomain", "LatticeStorePostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LatticeDomainTests",
            dependencies: ["LatticeDomain", "LatticeTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LatticeStoreTests",
            dependencies: [
                "LatticeStore", "LatticeStoreSQLite", "LatticeStorePostgres", "LatticeDomain", "LatticeTestSupport",
                "LatticeTestDatabase",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LatticeComputeTests",
            dependencies: [
                "LatticeCompute", "LatticeComputeEngine", "LatticeComputeKubernetes", "LatticeDomain",
                "LatticeTestSupport", "LatticeKubeFake",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LatticeComputeKubernetesTests",
            dependencies: [
                "LatticeComputeKubernetes", "LatticeCompute", "LatticeDomain", "LatticeTestSupport", "LatticeKubeFake",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LatticeGatewayTests",
            dependencies: [
                "LatticeGateway", "LatticeDomain",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LatticeClientTests",
            dependencies: [
                "LatticeClient", "LatticeServer", "LatticeTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LatticeServerTests",
            dependencies: [
                "LatticeServer", "LatticeTestSupport", "LatticeTestDatabase",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
