import Foundation
import LatticeDomain
import LatticeStore
import LatticeStorePostgres
import LatticeStoreSQLite
import LatticeTestDatabase
import LatticeTestSupport
import Testing

/// Issue 22: SSH passwords and Jupyter tokens are sealed at rest, on both stores.
@Suite(.timeLimit(.minutes(10))) struct SecretSealTests {
    /// A database that can be opened again (by another store, with another key) and read raw.
    struct Kind: CustomStringConvertible, Sendable {
        let description: String
        let database: @Sendable () async throws -> String
        let open: @Sendable (String, SecretSeal?) async throws -> any Store
        let rawDocs: @Sendable (String, any Store) async throws -> [String]

        static let sqlite = Kind(
            description: "sqlite-file",
            database: {
                let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lattice-seal-\(UUID())")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                return dir.appendingPathComponent("lattice.sqlite").path
            },
            open: { path, seal in try SQLiteStore(path: path, seal: seal) },
            rawDocs: { _, store in
                let tables = try await (store as! SQLiteStore).exportTables()
                let instances = try #require(tables.first { $0.name == "instances" }?.rows)
                let doc = try #require(instances.columns.firstIndex(of: "doc"))
                return instances.rows.compactMap { if case .text(let text) = $0[doc] { text } else { nil } }
            }
        )

        static let postgres = Kind(
            description: "postgresql",
            database: { try await TestDatabase.freshDatabase() },
            open: { url, seal in try await TestDatabase.open(url, seal: seal) },
            rawDocs: { url, _ in try await TestDatabase.texts("SELECT doc FROM instances", in: url) }
        )

        static let all = [sqlite] + (TestDatabase.runs ? [postgres] : [])
    }

    let keyA = try! SecretSeal(key: Data(repeating: 1, count: 32))
    let keyB = try! SecretSeal(key: Data(repeating: 2, count: 32))

    func create(_ name: String, in store: any Store) async throws {
        try await fund(store)
        var instance = draft(name)
        instance.access.sshPassword = "pw-\(name)-secret"
        instance.access.jupyterToken = "jt-\(name)-secret"
        instance.workload = WorkloadSettings(env: ["PLAIN": "shown"], secretEnv: ["API_KEY": "sk-\(name)-secret"])
        _ = try await store.createInstance(
            instance,
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: name),
            couponID: nil,
            debit: .none
        )
    }

    @Test(arguments: Kind.all)
    func secretsAreSealedInTheRowsAndClearAboveTheStore(_ kind: Kind) async throws {
        let database = try await kind.database()
        let store = try await kind.open(database, keyA)
        try await create("instance-00000001", in: store)
        let docs = try await kind.rawDocs(database, store)
        #expect(docs.count == 1)
        #expect(!docs[0].contains("-secret"), "no secret in the clear: \(docs[0])")
        #expect(docs[0].contains("sealed:v1:\(keyA.keyID):"))
        let read = try #require(try await store.instance(name: "instance-00000001"))
        #expect(read.access.sshPassword == "pw-instance-00000001-secret")
        #expect(read.access.jupyterToken == "jt-instance-00000001-secret")
        #expect(read.workload?.secretEnv == ["API_KEY": "sk-instance-00000001-secret"])
        #expect(read.workload?.env == ["PLAIN": "shown"])
        let listed = try await store.instances(namespace: "alice", cluster: nil, page: PageRequest()).items
        #expect(listed.map(\.access.sshPassword) == ["pw-instance-00000001-secret"])
    }

    @Test(arguments: Kind.all)
    func aServerWithAnotherKeyRefusesToStart(_ kind: Kind) async throws {
        let database = try await kind.database()
        let store = try await kind.open(database, keyA)
        try await create("instance-00000001", in: store)
        await #expect(throws: SealError.wrongKey(sealedWith: keyA.keyID, have: keyB.keyID)) {
            _ = try await kind.open(database, keyB)
        }
        let again = try await kind.open(database, keyA)
        #expect(
            try await again.instance(name: "instance-00000001")?.access.sshPassword == "pw-instance-00000001-secret"
        )
    }

    @Test(arguments: Kind.all)
    func rowsFromBeforeSealingAreSealedAtStart(_ kind: Kind) async throws {
        let database = try await kind.database()
        let clear = try await kind.open(database, nil)
        try await create("instance-00000001", in: clear)
        #expect(try await kind.rawDocs(database, clear).allSatisfy { $0.contains("pw-instance-00000001-secret") })
        let sealed = try await kind.open(database, keyA)
        #expect(try await kind.rawDocs(database, sealed).allSatisfy { !$0.contains("-secret") })
        #expect(
            try await sealed.instance(name: "instance-00000001")?.workload?.secretEnv["API_KEY"]
                == "sk-instance-00000001-secret"
        )
        #expect(
            try await sealed.instance(name: "instance-00000001")?.access.jupyterToken == "jt-instance-00000001-secret"
        )
    }

    @Test func keyFilesAreMadeOnceWithMode0600() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("seal-\(UUID()).key")
        let made = try SecretSeal.loadOrCreate(at: path)
        let read = try SecretSeal.loadOrCreate(at: path)
        #expect(made.keyID == read.keyID)
        let mode = try FileManager.default.attributesOfItem(atPath: path.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(throws: SealError.self) { try SecretSeal(base64: "c2hvcnQ=") }
        let sealed = try made.seal("hello")
        #expect(sealed != "hello")
        #expect(try made.open(sealed) == "hello")
        #expect(throws: SealError.self) { try made.open("sealed:v1:\(made.keyID):AAAA") }
    }
}
