import Foundation
import Hummingbird
import LatticeCompute
import LatticeDomain
import LatticeStore
import Synchronization

/// Registers every route. Handlers translate HTTP to `LatticeAPI` calls and back; they
/// hold no logic of their own.
struct Routes {
    let api: LatticeAPI
    let store: any Store
    let clock: any WallClock
    let readiness: Readiness
    let limits: RequestLimits
    let metrics: ServerMetrics

    func register(on router: Router<LatticeRequestContext>) {
        router.get("/healthz") { _, _ in
            try JSONResponse.encode(["status": "ok", "version": LatticeVersion.current])
        }
        router.get("/readyz") { _, context in
            try limits.perAddress.take(context.remoteAddress)
            do {
                try await store.ping()
            } catch {
                throw LatticeError(.unavailable, code: "NotReady", "the store does not answer")
            }
            let leadership = readiness.leadership
            let leading = leadership?.isLeader ?? true
            // The leader is ready once its reconciler has made a pass; any other replica
            // serves the API as soon as it reaches the database.
            guard readiness.isReady || !leading else {
                throw LatticeError(.unavailable, code: "NotReady", "the reconciler has not completed a pass yet")
            }
            var body = ReadyBody(status: "ready", role: leading ? "leader" : "replica")
            if let leadership {
                body.replica = leadership.holder
                if let lease = leadership.lease, !lease.holder.isEmpty {
                    body.leader = lease.holder
                    body.epoch = String(lease.epoch)
                }
            }
            body.sshListeners = readiness.sshListeners?()
            return try JSONResponse.encode(body)
        }
        router.get("/metrics") { _, context in
            try limits.perAddress.take(context.remoteAddress)
            let text = try await MetricsText.render(api: api, metrics: metrics)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: text))
            )
        }

        router.get("/openapi.json") { _, context in
            try limits.perAddress.take(context.remoteAddress)
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: try OpenAPIDocument.render()))
            )
        }

        let v1 = router.group("mdc/api/v1").add(
            middleware: AuthMiddleware(store: store, clock: clock, cache: api.tokenCache, limits: limits)
        ).add(
            middleware: IdempotencyMiddleware(store: store, clock: clock) { [api] outcome in
                switch outcome {
                case .answer(let status, let body):
                    var response = JSONResponse.raw(body)
                    response.status = HTTPResponse.Status(code: status)
                    return response
                case .instance(let namespace, let name):
                    return JSONResponse.raw(try await api.instanceJSON(namespace: namespace, name: name))
                case .balance(let namespace):
                    return try JSONResponse.encode(try await api.balance(namespace: namespace))
                }
            }
        )
        registerCatalog(v1)
        registerInstances(v1)
        registerAccounts(v1)
        ConsoleRoutes(api: api, store: store, clock: clock, sessions: ConsoleSessions(store: store), limits: limits)
            .register(on: router)
    }

    func registerCatalog(_ v1: RouterGroup<LatticeRequestContext>) {
        v1.get("regions") { _, _ in try JSONResponse.encode(api.regions()) }
        v1.get("skus/computings") { request, _ in
            try JSONResponse.encode(try await api.gpuSkus(regionID: request.uri.queryParameters.get("region_id")))
        }
        v1.get("skus/disks") { request, _ in
            try JSONResponse.encode(
                try api.diskSkus(regionID: request.uri.queryParameters.get("region_id"), page: try pageRequest(request))
            )
        }
        v1.get("images") { request, context in
            try JSONResponse.encode(
                try await api.images(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.delete("images") { request, context in
            try await api.deleteImage(
                principal: try context.requirePrincipal(),
                reference: request.uri.queryParameters.get("name")
            )
            return JSONResponse.ok
        }
    }

    func registerInstances(_ v1: RouterGroup<LatticeRequestContext>) {
        let instances = v1.group("clusters/:cluster/instances")
        instances.post { request, context in
            let body = try await request.jsonBody(context: context)
            let created = try await api.createInstance(
                principal: try context.requirePrincipal(),
                cluster: try cluster(context),
                body: body
            )
            context.trace.target = created.name
            return try JSONResponse.encode(created)
        }
        instances.get { request, context in
            JSONResponse.raw(
                try await api.instancesJSON(
                    principal: try context.requirePrincipal(),
                    cluster: try cluster(context),
                    page: try pageRequest(request)
                )
            )
        }
        instances.delete { request, context in
            try await api.delete(
                principal: try context.requirePrincipal(),
                cluster: try cluster(context),
                name: request.uri.queryParameters.get("name")
            )
            return JSONResponse.ok
        }
        instances.get(":name") { _, context in
            JSONResponse.raw(
                try await api.instanceJSON(
                    principal: try context.requirePrincipal(),
                    cluster: try cluster(context),
                    name: try name(context)
                )
            )
        }
        instances.post(":name/power_off") { request, context in
            let body = try await request.jsonBody(context: context)
            try await api.powerOff(
                principal: try context.requirePrincipal(),
                cluster: try cluster(context),
                name: try name(context),
                body: body
            )
            return JSONResponse.ok
        }
        instances.post(":name/renew") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.renew(
                    principal: try context.requirePrincipal(),
                    cluster: try cluster(context),
                    name: try name(context),
                    body: body,
                    idempotencyKey: try idempotencyKey(request)
                )
            )
        }
        instances.post(":name/schedule_stop") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.scheduleStop(
                    principal: try context.requirePrincipal(),
                    cluster: try cluster(context),
                    name: try name(context),
                    body: body
                )
            )
        }
        instances.post(":name/idle_stop") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.idleStop(
                    principal: try context.requirePrincipal(),
                    cluster: try cluster(context),
                    name: try name(context),
                    body: body
                )
            )
        }
        instances.get(":name/metrics") { _, context in
            try JSONResponse.encode(
                try await api.instanceMetrics(
                    principal: try context.requirePrincipal(),
                    cluster: try cluster(context),
                    name: try name(context)
                )
            )
        }
        instances.get(":name/logs") { request, context in
            let principal = try context.requirePrincipal()
            let (cluster, name) = (try cluster(context), try name(context))
            let logs = try LogsRequest(
                tail: request.uri.queryParameters["tail"].map(String.init),
                follow: request.uri.queryParameters["follow"].map(String.init)
            )
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; charset=utf-8"
            headers[.cacheControl] = "no-store"
            guard logs.follow else {
                let text = ExecText()
                try await api.instanceLogs(principal: principal, cluster: cluster, name: name, request: logs) {
                    text.append($0)
                }
                return Response(
                    status: .ok,
                    headers: headers,
                    body: ResponseBody(byteBuffer: ByteBuffer(data: text.bytes))
                )
            }
            // Errors after the answer has begun cannot be a status: the ones known before are.
            try await api.checkLogs(principal: principal, cluster: cluster, name: name)
            let (stream, sink) = AsyncStream.makeStream(of: ByteBuffer.self)
            let follower = Task {
                try? await api.instanceLogs(principal: principal, cluster: cluster, name: name, request: logs) {
                    sink.yield(ByteBuffer(data: $0))
                }
                sink.finish()
            }
            sink.onTermination = { _ in follower.cancel() }
            return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: stream))
        }
        instances.post(":name/power_on") { request, context in
            // power_on takes no body; one that is sent is still size-checked and must be JSON.
            _ = try await request.jsonBody(context: context)
            try await api.powerOn(
                principal: try context.requirePrincipal(),
                cluster: try cluster(context),
                name: try name(context)
            )
            return JSONResponse.ok
        }
    }

    func registerAccounts(_ v1: RouterGroup<LatticeRequestContext>) {
        v1.post("tokens") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createToken(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.get("tokens") { request, context in
            try JSONResponse.encode(
                try await api.tokens(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.post("tokens/:id/regenerate") { _, context in
            try JSONResponse.encode(
                try await api.regenerateToken(
                    principal: try context.requirePrincipal(),
                    id: try context.parameters.require("id")
                )
            )
        }
        v1.delete("tokens/:id") { _, context in
            try await api.deleteToken(
                principal: try context.requirePrincipal(),
                id: try context.parameters.require("id")
            )
            return JSONResponse.ok
        }
        v1.post("ssh-keys") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createSSHKey(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.get("ssh-keys") { request, context in
            try JSONResponse.encode(
                try await api.sshKeys(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.delete("ssh-keys/:id") { _, context in
            try await api.deleteSSHKey(
                principal: try context.requirePrincipal(),
                id: try context.parameters.require("id")
            )
            return JSONResponse.ok
        }
        v1.get("budget") { request, context in
            try JSONResponse.encode(
                try await api.budget(
                    principal: try context.requirePrincipal(),
                    namespace: request.uri.queryParameters["namespace"].map(String.init)
                )
            )
        }
        v1.put("budget") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.setBudget(
                    principal: try context.requirePrincipal(),
                    namespace: request.uri.queryParameters["namespace"].map(String.init),
                    body: body
                )
            )
        }
        for (path, nodes) in [("events", false), ("admin/events", true)] {
            // A tenant's namespace's events; admins: the nodes'.
            v1.get(RouterPath(path)) { request, context in
                let namespace = try api.eventNamespace(principal: try context.requirePrincipal(), nodes: nodes)
                let resume =
                    request.headers[.lastEventID]
                    ?? request.uri.queryParameters["lastEventId"].map(String.init)
                if request.uri.queryParameters["follow"] == "false" {
                    return try JSONResponse.encode(
                        try await api.eventList(
                            namespace: namespace,
                            after: resume,
                            limit: request.uri.queryParameters["limit"].map(String.init)
                        )
                    )
                }
                return EventStream.response(
                    namespace: namespace,
                    after: try await api.eventStart(namespace: namespace, lastEventID: resume),
                    store: store,
                    hub: api.events,
                    format: api.configuration.time.format
                )
            }
        }
        v1.post("webhooks") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createWebhook(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.get("webhooks") { request, context in
            try JSONResponse.encode(
                try await api.webhooks(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.get("webhooks/:id") { _, context in
            try JSONResponse.encode(
                try await api.webhook(
                    principal: try context.requirePrincipal(),
                    id: try context.parameters.require("id")
                )
            )
        }
        v1.delete("webhooks/:id") { _, context in
            try await api.deleteWebhook(
                principal: try context.requirePrincipal(),
                id: try context.parameters.require("id")
            )
            return JSONResponse.ok
        }
        v1.get("webhooks/:id/deliveries") { request, context in
            try JSONResponse.encode(
                try await api.webhookDeliveries(
                    principal: try context.requirePrincipal(),
                    id: try context.parameters.require("id"),
                    page: try pageRequest(request)
                )
            )
        }
        v1.get("idle_stop") { request, context in
            try JSONResponse.encode(
                try await api.idleDefault(
                    principal: try context.requirePrincipal(),
                    namespace: request.uri.queryParameters["namespace"].map(String.init)
                )
            )
        }
        v1.put("idle_stop") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.setIdleDefault(
                    principal: try context.requirePrincipal(),
                    namespace: request.uri.queryParameters["namespace"].map(String.init),
                    body: body
                )
            )
        }
        v1.delete("idle_stop") { request, context in
            try await api.clearIdleDefault(
                principal: try context.requirePrincipal(),
                namespace: request.uri.queryParameters["namespace"].map(String.init)
            )
            return JSONResponse.ok
        }
        v1.post("templates") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createTemplate(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.get("templates") { request, context in
            try JSONResponse.encode(
                try await api.templates(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.get("templates/:id") { _, context in
            try JSONResponse.encode(
                TemplateWire(
                    try await api.template(
                        principal: try context.requirePrincipal(),
                        id: try context.parameters.require("id")
                    )
                )
            )
        }
        v1.delete("templates/:id") { _, context in
            try await api.deleteTemplate(
                principal: try context.requirePrincipal(),
                id: try context.parameters.require("id")
            )
            return JSONResponse.ok
        }
        v1.get("admin/nodes") { request, context in
            let page = LatticeAPI.page(
                try await api.adminNodes(principal: try context.requirePrincipal()),
                try pageRequest(request)
            )
            return try JSONResponse.encode(AdminNodesPage(page, sshListeners: readiness.sshListeners?()))
        }
        v1.post("admin/nodes/:node/:verb") { request, context in
            // Any body is size-checked and must be JSON; none is needed.
            _ = try await request.jsonBody(context: context)
            let verb = try context.parameters.require("verb")
            guard verb == "drain" || verb == "undrain" else {
                throw LatticeError.notFound("node action '\(verb.prefix(40))'")
            }
            return try JSONResponse.encode(
                try await api.setDrained(
                    principal: try context.requirePrincipal(),
                    node: try context.parameters.require("node"),
                    verb == "drain"
                )
            )
        }
        v1.post("admin/users") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createUser(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.get("admin/users") { request, context in
            try JSONResponse.encode(
                try await api.users(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.post("admin/users/:namespace/:verb") { request, context in
            let body = try await request.jsonBody(context: context)
            let verb = try context.parameters.require("verb")
            let principal = try context.requirePrincipal()
            let namespace = try context.parameters.require("namespace")
            switch verb {
            case "credit":
                return try JSONResponse.encode(
                    try await api.credit(principal: principal, namespace: namespace, body: body)
                )
            case "debit":
                return try JSONResponse.encode(
                    try await api.debit(principal: principal, namespace: namespace, body: body)
                )
            default:
                throw LatticeError.notFound("user action '\(verb.prefix(40))'")
            }
        }
        v1.get("admin/instances") { request, context in
            let query = request.uri.queryParameters
            return try JSONResponse.encode(
                try await api.adminInstances(
                    principal: try context.requirePrincipal(),
                    filter: InstanceFilter(
                        namespace: query.get("namespace") ?? "",
                        status: query.get("status") ?? "",
                        node: query.get("node") ?? ""
                    ),
                    page: try pageRequest(request)
                )
            )
        }
        v1.get("admin/users/:namespace/quota") { _, context in
            try JSONResponse.encode(
                try await api.quota(
                    principal: try context.requirePrincipal(),
                    namespace: try context.parameters.require("namespace")
                )
            )
        }
        v1.put("admin/users/:namespace/quota") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.setQuota(
                    principal: try context.requirePrincipal(),
                    namespace: try context.parameters.require("namespace"),
                    body: body
                )
            )
        }
        v1.post("admin/coupons") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createCoupon(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.post("admin/coupons/:id/disable") { request, context in
            _ = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.disableCoupon(
                    principal: try context.requirePrincipal(),
                    id: try context.parameters.require("id")
                )
            )
        }
        v1.put("admin/skus/computings/:skuId") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.changePrice(
                    principal: try context.requirePrincipal(),
                    skuID: try context.parameters.require("skuId"),
                    body: body
                )
            )
        }
        v1.get("admin/skus/computings/:skuId/prices") { request, context in
            try JSONResponse.encode(
                try await api.priceHistory(
                    principal: try context.requirePrincipal(),
                    skuID: try context.parameters.require("skuId"),
                    page: try pageRequest(request)
                )
            )
        }
        v1.get("admin/coupons") { request, context in
            try JSONResponse.encode(
                try await api.coupons(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.get("audit") { request, context in
            try JSONResponse.encode(
                try await api.audit(
                    principal: try context.requirePrincipal(),
                    action: request.uri.queryParameters.get("action"),
                    page: try pageRequest(request)
                )
            )
        }
        v1.get("admin/audit") { request, context in
            try JSONResponse.encode(
                try await api.adminAudit(
                    principal: try context.requirePrincipal(),
                    namespace: request.uri.queryParameters.get("namespace"),
                    action: request.uri.queryParameters.get("action"),
                    page: try pageRequest(request)
                )
            )
        }
        v1.get("balance") { _, context in
            try JSONResponse.encode(try await api.balance(namespace: try context.requirePrincipal().namespace))
        }
        v1.get("orders") { request, context in
            try JSONResponse.encode(
                try await api.orders(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.get("statements") { request, context in try await statement(request, context) }
        v1.get("bills") { request, context in
            try JSONResponse.encode(
                try await api.bills(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
    }

    /// JSON, or CSV for `?format=csv` or an `Accept` that asks for `text/csv`.
    func statement(_ request: Request, _ context: LatticeRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        let format = query.get("format") ?? ""
        guard ["", "json", "csv"].contains(format) else {
            throw LatticeError.invalidField("format", "must be json or csv")
        }
        let statement = try await api.statement(principal: try context.requirePrincipal(), month: query.get("month"))
        let wantsCSV = format == "csv" || (format.isEmpty && (request.headers[.accept] ?? "").contains("text/csv"))
        return wantsCSV ? JSONResponse.csv(statement) : try JSONResponse.encode(statement)
    }

    func cluster(_ context: LatticeRequestContext) throws -> String { try context.parameters.require("cluster") }
    func name(_ context: LatticeRequestContext) throws -> String { try context.parameters.require("name") }

    /// The `Idempotency-Key` header (SPEC §3: 1 to 255 printable characters), if sent.
    func idempotencyKey(_ request: Request) throws -> String? {
        guard let key = request.headers[.idempotencyKey] else { return nil }
        try Idempotency.validate(key)
        return key
    }

    func pageRequest(_ request: Request) throws -> PageRequest {
        try PageRequest(
            page: request.uri.queryParameters.get("page"),
            pageSize: request.uri.queryParameters.get("pageSize")
        )
    }
}

/// `/readyz`'s answer.
struct ReadyBody: Encodable {
    var status: String
    var role: String
    var replica: String?
    var leader: String?
    var epoch: String?
    /// The SSH gateway's descriptor budget and its use (`DescriptorBudget`).
    var sshListeners: SSHListenerReport?
}

/// `GET /admin/nodes`: the nodes in the seed's list shape, and the SSH gateway's listeners.
struct AdminNodesPage: Encodable {
    var hasNextPage: Bool
    var nodes: [AdminNodeWire]
    var totalCount: Int
    var sshListeners: SSHListenerReport?

    init(_ page: Page<AdminNodeWire>, sshListeners: SSHListenerReport?) {
        hasNextPage = page.hasNextPage
        nodes = page.nodes
        totalCount = page.totalCount
        self.sshListeners = sshListeners
    }
}

/// Set once the reconciler has completed its first pass; `/readyz` reports it, with who
/// leads when replicas share a database.
final class Readiness: Sendable {
    private struct State {
        var ready = false
        var leadership: Leadership?
        var sshListeners: (@Sendable () -> SSHListenerReport)?
    }

    private let state = Mutex(State())

    /// Set once by the composition root.
    var leadership: Leadership? {
        get { state.withLock { $0.leadership } }
        set { state.withLock { $0.leadership = newValue } }
    }
    /// The SSH gateway's listeners against its budget; set once by the composition root.
    var sshListeners: (@Sendable () -> SSHListenerReport)? {
        get { state.withLock { $0.sshListeners } }
        set { state.withLock { $0.sshListeners = newValue } }
    }
    var isReady: Bool { state.withLock { $0.ready } }
    func markReady() { state.withLock { $0.ready = true } }
}
