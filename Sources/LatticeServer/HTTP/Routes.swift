import Foundation
import Hummingbird
import LatticeCompute
import LatticeDomain
import LatticeStore
import ServiceLifecycle
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
            // The follower is a child of the response's writer: a client that goes away ends it
            // at the next write. The server waits for its responses to end before it stops, so
            // a followed log ends then (as an event stream does).
            let body = ResponseBody { writer in
                let (stream, sink) = AsyncStream.makeStream(of: ByteBuffer.self)
                try await withGracefulShutdownHandler {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            try? await api.instanceLogs(
                                principal: principal,
                                cluster: cluster,
                                name: name,
                                request: logs
                            ) { sink.yield(ByteBuffer(data: $0)) }
                            sink.finish()
                        }
                        for await chunk in stream { try await writer.write(chunk) }
                        group.cancelAll()
                    }
                } onGracefulShutdown: {
                    sink.finish()
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: headers, body: body)
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
