import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LatticeDomain
import Synchronization
import Testing

@testable import LatticeServer

/// SPEC §10's audit log: every state-changing call, its answer's status, who and from where.
@Suite(.timeLimit(.minutes(10))) struct AuditTests {
    @Test func routesNameTheirActions() {
        let v1 = "/mdc/api/v1"
        #expect(AuditRule.action(method: "POST", route: "\(v1)/clusters/{cluster}/instances") == "instance.create")
        #expect(
            AuditRule.action(method: "POST", route: "\(v1)/clusters/{cluster}/instances/{name}/power_off")
                == "instance.power_off"
        )
        #expect(AuditRule.action(method: "POST", route: "\(v1)/tokens/{id}/regenerate") == "token.regenerate")
        #expect(
            AuditRule.action(method: "POST", route: "\(v1)/admin/users/{namespace}/{verb}", verb: "debit")
                == "wallet.debit"
        )
        #expect(
            AuditRule.action(method: "POST", route: "\(v1)/admin/nodes/{node}/{verb}", verb: "drain") == "node.drain"
        )
        #expect(
            AuditRule.action(method: "POST", route: "/console/admin/wallet/{verb}", verb: "credit") == "wallet.credit"
        )
        #expect(
            AuditRule.action(
                method: "POST",
                route: "/console/admin/instances/{namespace}/{cluster}/{name}/{verb}",
                verb: "power_off"
            ) == "instance.power_off"
        )
        #expect(AuditRule.action(method: "POST", route: "/console/admin/prices/{sku}") == "price.change")
        #expect(AuditRule.action(method: "GET", route: "\(v1)/clusters/{cluster}/instances") == nil)
        #expect(AuditRule.action(method: "POST", route: "/healthz") == nil)
        #expect(AuditRule.action(method: "POST", route: "\(v1)/something-new") == "http.post")
        let captures = AuditRule.captures(
            route: "\(v1)/clusters/{cluster}/instances/{name}/power_on",
            path: "\(v1)/clusters/host-cluster/instances/instance-1/power_on"
        )
        #expect(captures == ["cluster": "host-cluster", "name": "instance-1"])
        #expect(AuditRule.target(captures: captures, nameQuery: nil) == "instance-1")
        #expect(AuditRule.target(captures: [:], nameQuery: "img") == "img")
    }

    /// Every state-changing operation of the API document has an action of its own, so
    /// none is filed under the catch-all `http.<method>`.
    @Test func everyDocumentedWriteHasItsOwnAction() {
        for operation in OpenAPIDocument.operations where !["get", "head"].contains(operation.method) {
            var route = operation.path
            var verb: String?
            // The document lists drain and undrain; the router has one route with {verb}.
            for prefix in ["/mdc/api/v1/admin/nodes/{node}/", "/mdc/api/v1/admin/users/{namespace}/"]
            where route.hasPrefix(prefix) && !route.hasSuffix("/quota") {
                verb = String(route.split(separator: "/").last!)
                route = prefix + "{verb}"
            }
            let action = AuditRule.action(method: operation.method.uppercased(), route: route, verb: verb)
            #expect(action != nil && action?.hasPrefix("http.") == false, "\(operation.method) \(operation.path)")
        }
    }

    @Test func callsAreAuditedWithTheirAnswerAndOnlyTheirNamespaceSeesThem() async throws {
        let server = try await TestServer()
        try await server.test { client in
            var alice = ""
            try await client.execute(
                uri: "/mdc/api/v1/admin/users",
                method: .post,
                headers: headers(),
                body: json(["namespace": "alice", "balance": "1000"])
            ) { response in
                alice = (decode(response.body) as? [String: Any])?["token"] as? String ?? ""
            }
            var body = createBody
            body["namespace"] = "alice"
            var created = ""
            try await client.execute(
                uri: "/mdc/api/v1/clusters/host-cluster/instances",
                method: .post,
                headers: headers(alice, namespace: "alice").adding(.requestID, "create-1"),
                body: json(body)
            ) { response in
                #expect(response.status == .ok)
                created = (decode(response.body) as? [String: Any])?["name"] as? String ?? ""
            }
            try await client.execute(
                uri: "/mdc/api/v1/clusters/host-cluster/instances/instance-00000000/power_off",
                method: .post,
                headers: headers(alice, namespace: "alice"),
                body: ByteBuffer(string: "{}")
            ) { #expect($0.status == .notFound) }
            try await client.execute(
                uri: "/mdc/api/v1/audit",
                method: .get,
                headers: headers(alice, namespace: "alice")
            ) { response in
                let page = try JSONDecoder().decode(Page<AuditEntryWire>.self, from: Data(buffer: response.body))
                #expect(page.nodes.map(\.action) == ["instance.power_off", "instance.create"])
                let refused = page.nodes[0]
                #expect(refused.status == 404 && refused.target == "instance-00000000")
                let create = page.nodes[1]
                #expect(create.target == created && !created.isEmpty)
                #expect(create.requestId == "create-1" && create.actor == "alice" && create.namespace == "alice")
                #expect(create.status == 200 && !create.remoteAddress.isEmpty && !create.time.isEmpty)
            }
            try await client.execute(
                uri: "/mdc/api/v1/audit?action=instance.create",
                method: .get,
                headers: headers(alice, namespace: "alice")
            ) { response in
                let page = try JSONDecoder().decode(Page<AuditEntryWire>.self, from: Data(buffer: response.body))
                #expect(page.nodes.map(\.action) == ["instance.create"] && page.totalCount == 1)
            }
            // The admin's own log holds its user.create of alice; admin/audit sees both.
            try await client.execute(uri: "/mdc/api/v1/audit", method: .get, headers: headers()) { response in
                let page = try JSONDecoder().decode(Page<AuditEntryWire>.self, from: Data(buffer: response.body))
                #expect(page.nodes.map(\.action) == ["user.create"] && page.nodes.first?.target == "")
            }
            try await client.execute(uri: "/mdc/api/v1/admin/audit?namespace=alice", method: .get, headers: headers()) {
                response in
                let page = try JSONDecoder().decode(Page<AuditEntryWire>.self, from: Data(buffer: response.body))
                #expect(page.totalCount == 2)
            }
            try await client.execute(
                uri: "/mdc/api/v1/admin/audit",
                method: .get,
                headers: headers(alice, namespace: "alice")
            ) { #expect($0.status == .forbidden) }
            try await client.execute(
                uri: "/mdc/api/v1/audit?action=bad%20action",
                method: .get,
                headers: headers(alice, namespace: "alice")
            ) { #expect($0.status == .badRequest) }
        }
    }
}

extension HTTPFields {
    func adding(_ name: HTTPField.Name, _ value: String) -> HTTPFields {
        var fields = self
        fields[name] = value
        return fields
    }
}

/// The audit log's group commit: many calls answered together cost one write per batch,
/// and each caller returns only once its own entry is written.
@Suite(.timeLimit(.minutes(10))) struct AuditBatchesTests {
    final class SlowLog: Sendable {
        let batches = Mutex<[[String]]>([])

        func write(_ entries: [AuditEntry]) async {
            try? await Task.sleep(for: .milliseconds(5))
            batches.withLock { $0.append(entries.map(\.id)) }
        }

        func written() -> Set<String> { batches.withLock { Set($0.flatMap { $0 }) } }
    }

    static func entry(_ id: String) -> AuditEntry {
        AuditEntry(
            id: id,
            time: Date(timeIntervalSince1970: 0),
            namespace: "alice",
            actor: "alice",
            action: "instance.create",
            target: "",
            status: 200,
            requestId: id,
            remoteAddress: "127.0.0.1"
        )
    }

    @Test func concurrentCallsShareWritesAndEachReturnsOnceItsEntryIsWritten() async {
        let log = SlowLog()
        let batches = AuditBatches { await log.write($0) }
        await withTaskGroup(of: Void.self) { group in
            for number in 0..<200 {
                group.addTask {
                    let id = "audit-\(number)"
                    await batches.append(Self.entry(id))
                    #expect(log.written().contains(id), "returned before its entry was written")
                }
            }
        }
        let all = log.batches.withLock { $0 }
        #expect(all.flatMap { $0 }.count == 200 && log.written().count == 200, "each entry written once")
        #expect(all.count < 200, "batched: \(all.count) writes")
        // Quiet again: one call, one write of its own.
        await batches.append(Self.entry("late"))
        #expect(log.batches.withLock { $0.last } == ["late"])
    }
}
