import Foundation
import LatticeCompute
import LatticeDomain
import LatticeStore

extension LatticeAPI {
    func requireCluster(_ name: String) throws -> Cluster {
        guard let cluster = catalog.cluster(named: name) else { throw LatticeError.notFound("cluster '\(name)'") }
        return cluster
    }

    /// `POST /clusters/{cluster}/instances`: validates against the catalog, then places,
    /// reserves and writes in one store transaction. Answers at once with `Creating`.
    public func createInstance(
        principal: Principal,
        cluster clusterName: String,
        body: JSONValue
    ) async throws -> InstanceWire {
        let cluster = try requireCluster(clusterName)
        var body = body
        if case .object(let fields) = body, let named = fields["template"], named != .null {
            guard case .string(let id) = named, !id.isEmpty else {
                throw LatticeError.invalidField("template", "must be a template's id; see GET /mdc/api/v1/templates")
            }
            body = try await template(principal: principal, id: id).fill(body)
        }
        let request = try CreateInstanceRequest(json: body)
        guard request.namespace == principal.namespace else {
            throw LatticeError.forbidden(
                "namespace: body namespace '\(request.namespace)' does not match the caller's namespace"
            )
        }
        guard let region = catalog.region(ofCluster: cluster.name) else {
            throw LatticeError.notFound("cluster '\(clusterName)'")
        }
        if !request.region.isEmpty, request.region != region.id, request.region != region.name,
            request.region != cluster.name
        {
            throw LatticeError.unprocessable(
                "UnknownRegion",
                "Region: '\(request.region)' is neither the id nor the name of region \(region.name), "
                    + "where cluster \(cluster.name) is"
            )
        }
        guard let sku = catalog.gpuSku(id: request.gpuSkuID) else {
            throw LatticeError.unprocessable(
                "UnknownSKU",
                "Cost.GPUSKUID: no GPU SKU '\(request.gpuSkuID)'; see GET /mdc/api/v1/skus/computings"
            )
        }
        guard sku.clusterName == cluster.name else {
            throw LatticeError.unprocessable(
                "UnknownSKU",
                "Cost.GPUSKUID: SKU '\(sku.id)' is sold in cluster \(sku.clusterName), not \(cluster.name)"
            )
        }
        guard request.costType == sku.sellingType else {
            throw LatticeError.invalidField(
                "Cost.CostType",
                "must be \(sku.sellingType), the sellingType of GPU SKU '\(sku.id)', got \(request.costType)"
            )
        }
        let now = clock.now()
        var scheduleStop: Date?
        if let unit = sku.selling.termUnit {
            guard !request.costTime.isEmpty else {
                throw LatticeError.invalidField(
                    "Cost.CostTime",
                    "is required for prepaid SKU '\(sku.id)', such as 3\(unit.rawValue)"
                )
            }
            let term = try CostTime.parse(request.costTime)
            guard !term.isExtension else {
                throw LatticeError.invalidField(
                    "Cost.CostTime",
                    "'+' extends an existing term; use POST .../instances/{name}/renew"
                )
            }
            guard term.unit == unit else {
                throw LatticeError.invalidField(
                    "Cost.CostTime",
                    "SKU '\(sku.id)' is sold in terms of \(unit.rawValue); got '\(request.costTime)'"
                )
            }
            scheduleStop = term.end(from: now, timeZone: configuration.time.timeZone)
            guard request.couponID.isEmpty else {
                throw LatticeError.invalidField("Cost.CouponID", "coupons apply to pay-as-you-go only")
            }
        } else if !request.costTime.isEmpty {
            throw LatticeError.invalidField(
                "Cost.CostTime",
                "applies to prepaid SKUs only; SKU '\(sku.id)' is pay-as-you-go"
            )
        }
        if let at = request.scheduleStopAt {
            // SPEC §12: a pay-as-you-go instance may be given a time to power off; a prepaid
            // one stops when its term ends.
            guard sku.selling.termUnit == nil else {
                throw LatticeError.invalidField(
                    "ScheduleStopTimestamp",
                    "a prepaid instance stops when its term ends (Cost.CostTime); leave it out"
                )
            }
            guard at > now else {
                throw LatticeError.invalidField("ScheduleStopTimestamp", "must be in the future")
            }
            scheduleStop = at
        }
        if request.idleStop != nil, sku.selling.termUnit != nil {
            throw LatticeError.invalidField(
                "idleStop",
                "a prepaid instance's term is paid for; idle stop is for pay-as-you-go SKUs"
            )
        }
        guard let disk = catalog.diskSku(id: request.diskSkuID) else {
            throw LatticeError.unprocessable(
                "UnknownSKU",
                "Cost.DiskSKUID: no disk SKU '\(request.diskSkuID)'; see GET /mdc/api/v1/skus/disks"
            )
        }
        let size = request.sizeGiB ?? disk.defaultSizeGiB
        guard (disk.minSizeGiB...disk.maxSizeGiB).contains(size) else {
            throw LatticeError.invalidField(
                "VolumeMount[0].Size",
                "must be between \(disk.minSizeGiB) and \(disk.maxSizeGiB) GB, got \(size)"
            )
        }
        if let type = request.volumeType, type != disk.type {
            throw LatticeError.invalidField(
                "VolumeMount[0].Type",
                "disk SKU '\(disk.id)' provides '\(disk.type)', got '\(type)'"
            )
        }
        try await checkImage(request.image, namespace: principal.namespace)
        // The budget, the default idle stop and the drained nodes: one read.
        let inputs = try await store.startInputs(namespace: principal.namespace)
        try await checkBudget(namespace: principal.namespace, budget: inputs.budget)

        let nodes = try await placeableNodes(clusters: [cluster.name], drained: inputs.drained)
        let discount = Pricing.activeDiscount(of: sku, at: now)
        let prepaid = sku.selling != .payAsYouGo
        let idleDefault = prepaid || request.givesIdleStop ? nil : inputs.idleDefault
        for _ in 0..<5 {
            var rng = SystemRandomNumberGenerator()
            let name = Identifiers.instanceName(using: &rng)
            let orderID = Identifiers.uuid(using: &rng)
            let unitPrice = Pricing.effectivePrice(of: sku, at: now)
            let draft = Instance(
                name: name,
                uid: Identifiers.uuid(using: &rng),
                namespace: principal.namespace,
                cluster: cluster.name,
                regionID: region.id,
                displayName: request.displayName,
                description: request.description,
                image: request.image,
                cost: CostSelection(
                    costType: request.costType,
                    costTime: request.costTime,
                    couponID: request.couponID,
                    discountID: discount?.id ?? "",
                    gpuSkuID: sku.id,
                    diskSkuID: disk.id,
                    orderID: orderID,
                    unitPrice: unitPrice
                ),
                resources: InstanceResources(
                    cpuCores: sku.cpuCores,
                    memoryGiB: sku.memoryGiB,
                    gpuCount: sku.gpuCount,
                    gpuModel: sku.gpuModel,
                    gpuResourceKey: sku.gpuResourceKey,
                    systemDiskGiB: sku.systemStorageGiB
                ),
                volume: DataVolume(
                    name: Identifiers.volumeName(using: &rng),
                    pathInContainer: request.pathInContainer,
                    sizeGiB: size,
                    type: disk.type,
                    hostLocal: disk.isHostLocal(on: cluster),
                    storageClass: disk.storageClass(on: cluster),
                    accessMode: cluster.driver == .kubernetes ? disk.accessMode : nil
                ),
                access: AccessSecrets(
                    jupyterToken: Identifiers.jupyterToken(using: &rng),
                    sshPassword: Identifiers.sshPassword(using: &rng),
                    sshPort: 0,
                    publishesPorts: nil
                ),
                pod: PodInfo(name: Identifiers.podName(instance: name, using: &rng), node: "", ip: ""),
                createdAt: now,
                scheduleStopAt: scheduleStop
            )
            var withDisk = draft
            withDisk.cost.diskPricePerGBDay = disk.pricePerGBDay
            withDisk.workload = request.workload.isEmpty ? nil : request.workload
            let idle = IdleDefault.atCreate(
                requested: request.idleStop,
                givenIdleStop: request.givesIdleStop,
                wakeOnConnect: request.givesWakeOnConnect ? request.wakeOnConnect : nil,
                default: idleDefault,
                payAsYouGo: !prepaid
            )
            withDisk.idleStop = idle.policy
            withDisk.wakeOnConnect = idle.wakeOnConnect ? true : nil
            var termPrice = Money.zero
            // Pay-as-you-go: `WalletRule` checks an hour of it and of everything else running.
            var debit = WalletDebit.none
            if prepaid, let term = try? CostTime.parse(request.costTime), let end = scheduleStop {
                termPrice = Money(units: unitPrice.units * Int64(term.count))
                debit = WalletDebit(
                    required: termPrice,
                    charges: [
                        LedgerEntry(
                            id: Identifiers.uuid(using: &rng),
                            namespace: principal.namespace,
                            kind: .prepaid,
                            amount: termPrice,
                            instanceName: name,
                            periodStart: now,
                            periodEnd: end,
                            idempotencyKey: "prepaid:\(orderID)",
                            createdAt: now
                        )
                    ]
                )
            }
            let order = Order(
                id: orderID,
                namespace: principal.namespace,
                instanceName: name,
                costType: request.costType,
                gpuSkuID: sku.id,
                amount: termPrice,
                status: prepaid ? "paid" : "active",
                createdAt: now
            )
            IdempotencyScope.current?.expect(.instance(namespace: principal.namespace, name: name))
            do {
                let created = try await withSSHPortBudget {
                    try await store.createInstance(
                        withDisk,
                        on: nodes,
                        sshPorts: $0,
                        order: order,
                        couponID: request.couponID.isEmpty ? nil : request.couponID,
                        debit: debit
                    )
                }
                return InstanceWire(created, context: wire)
            } catch StoreError.duplicateName {
                continue
            }
        }
        throw LatticeError(.unavailable, code: "Unavailable", "could not allocate a unique instance name; retry")
    }

    /// Runs a write that takes an SSH port with the ports the descriptor budget allows; when
    /// the budget, not the range, ran out, the answer says so and how to raise it.
    func withSSHPortBudget<T>(_ write: (ClosedRange<Int>) async throws -> T) async throws -> T {
        let range = configuration.sshPorts
        guard let budget = configuration.descriptorBudget else { return try await write(range) }
        guard let allowed = configuration.allocatableSSHPorts else { throw budget.listenersExhausted(range: range) }
        do {
            return try await write(allowed)
        } catch let error as LatticeError where allowed != range && error == SSHPortRule.noneFree(in: allowed) {
            throw budget.listenersExhausted(range: range)
        }
    }

    /// Only official images, the caller's own ready snapshots and operator-allowed patterns run.
    func checkImage(_ image: String, namespace: String) async throws {
        if catalog.images.contains(where: { $0.name == image }) { return }
        if catalog.allowedImagePatterns.contains(where: { GlobPattern.matches($0, image) }) { return }
        let snapshots = try await store.images(namespace: namespace)
        if let own = snapshots.first(where: { $0.reference == image }) {
            guard own.status == .ready else {
                throw LatticeError.unprocessable(
                    "ImageNotReady",
                    "image: snapshot '\(image)' is \(own.status.rawValue), not Ready"
                )
            }
            return
        }
        throw LatticeError.unprocessable(
            "UnknownImage",
            "image: '\(image)' is not an official image nor one of your snapshots; see GET /mdc/api/v1/images"
        )
    }

    public func instance(principal: Principal, cluster: String, name: String) async throws -> InstanceWire {
        _ = try requireCluster(cluster)
        guard let instance = try await store.instance(namespace: principal.namespace, name: name),
            instance.cluster == cluster
        else {
            throw LatticeError.notFound("instance '\(name)' in cluster \(cluster)")
        }
        return InstanceWire(instance, context: wire)
    }

    public func instances(principal: Principal, cluster: String, page: PageRequest) async throws -> Page<InstanceWire> {
        _ = try requireCluster(cluster)
        let (items, total) = try await store.instances(namespace: principal.namespace, cluster: cluster, page: page)
        return Self.page(items.map { InstanceWire($0, context: wire) }, total: total, page)
    }

    /// Instances of every namespace for an admin (SPEC §9), each naming its namespace.
    public func adminInstances(
        principal: Principal,
        filter: InstanceFilter,
        page: PageRequest
    ) async throws -> Page<InstanceWire> {
        try requireAdmin(principal)
        if !filter.status.isEmpty, InstanceStatus(rawValue: filter.status) == nil {
            let known = InstanceStatus.allCases.map(\.rawValue).joined(separator: ", ")
            throw LatticeError.invalidField("status", "must be one of \(known), got '\(filter.status.prefix(40))'")
        }
        let (items, total) = try await store.instances(filter: filter, page: page)
        return Self.page(items.map { InstanceWire($0, context: wire) }, total: total, page)
    }

    /// Loads a tenant's instance in the named cluster, or 404 exactly as for a missing one.
    func ownInstance(principal: Principal, cluster: String, name: String) async throws -> Instance {
        _ = try requireCluster(cluster)
        guard let instance = try await store.instance(namespace: principal.namespace, name: name),
            instance.cluster == cluster
        else {
            throw LatticeError.notFound("instance '\(name)' in cluster \(cluster)")
        }
        return instance
    }

    /// `POST .../schedule_stop` (SPEC §12): power off (or delete) at a time; the zero time clears it.
    public func scheduleStop(
        principal: Principal,
        cluster: String,
        name: String,
        body: JSONValue
    ) async throws
        -> InstanceWire
    {
        let request = try ScheduleStopRequest(json: body)
        return try await changeOwnInstance(principal: principal, cluster: cluster, name: name) { current, now in
            try InstanceLifecycle.scheduleStop(current, at: request.at, action: request.action, now: now)
        }
    }

    /// `POST .../idle_stop` (SPEC §12): an idle policy set (its clock counting from now) or
    /// cleared, and `wakeOnConnect`.
    public func idleStop(
        principal: Principal,
        cluster: String,
        name: String,
        body: JSONValue
    ) async throws
        -> InstanceWire
    {
        let request = try IdleStopRequest(json: body)
        return try await changeOwnInstance(principal: principal, cluster: cluster, name: name) { current, now in
            try IdleRule.setPolicy(current, request.policy, wakeOnConnect: request.wakeOnConnect, now: now)
        }
    }

    /// One state-machine step on one of the caller's instances, answered as the instance after it.
    func changeOwnInstance(
        principal: Principal,
        cluster: String,
        name: String,
        _ step: @escaping @Sendable (Instance, Date) throws -> Instance
    ) async throws -> InstanceWire {
        let instance = try await ownInstance(principal: principal, cluster: cluster, name: name)
        let now = clock.now()
        let updated = try await store.updateInstance(namespace: principal.namespace, name: instance.name) {
            try step($0, now)
        }
        return InstanceWire(updated, context: wire)
    }

    public func powerOff(principal: Principal, cluster: String, name: String, body: JSONValue) async throws {
        let instance = try await ownInstance(principal: principal, cluster: cluster, name: name)
        let request = try PowerOffRequest(json: body)
        var snapshot: SnapshotRequest?
        if request.needSnapshot {
            let harbor = catalog.region(id: instance.regionID)?.harborAddr ?? "images.lattice.local"
            let reference = "\(harbor)/\(principal.namespace)/\(request.imageName):\(request.tag)"
            guard catalog.isSnapshotReferenceFree(reference), !catalog.reservedNamespaces.contains(principal.namespace)
            else {
                throw LatticeError(
                    .conflict,
                    code: "ImageNameReserved",
                    "imageName: '\(reference)' is an official image's name or under a reserved namespace; "
                        + "choose another imageName"
                )
            }
            let images = try await store.images(namespace: principal.namespace)
            if !images.contains(where: { $0.reference == reference }) {
                try QuotaRule.check(
                    namespace: principal.namespace,
                    usage: QuotaUsage(snapshots: images.count),
                    adding: QuotaUsage(snapshots: 1),
                    quota: try await store.quota(namespace: principal.namespace)
                )
            }
            snapshot = SnapshotRequest(imageReference: reference)
        }
        let now = clock.now()
        let requested = snapshot
        IdempotencyScope.current?.expect(.answer(status: 200, body: Data("\"ok\"".utf8)))
        _ = try await store.updateInstance(namespace: principal.namespace, name: instance.name) { current in
            try InstanceLifecycle.powerOff(
                current,
                gracePeriodSeconds: request.gracePeriodSeconds,
                snapshot: requested,
                now: now
            )
        }
    }

    public func powerOn(principal: Principal, cluster: String, name: String) async throws {
        let instance = try await ownInstance(principal: principal, cluster: cluster, name: name)
        try InstanceLifecycle.checkPowerOn(instance)
        try await checkBudget(namespace: principal.namespace)
        let now = clock.now()
        // The wallet check (an hour of everything the namespace would then run) is the
        // store's, inside the write: `WalletRule`.
        if instance.cost.costType != SellingType.payAsYouGo.rawValue, let end = instance.scheduleStopAt, end <= now {
            throw LatticeError(
                .conflict,
                code: "TermExpired",
                "instance \(name)'s prepaid term ended at \(wire.time.format(end)); "
                    + "renew it first (POST .../instances/\(name)/renew)"
            )
        }
        let nodes = try await placeableNodes(clusters: [cluster])
        var rng = SystemRandomNumberGenerator()
        let podName = Identifiers.podName(instance: name, using: &rng)
        IdempotencyScope.current?.expect(.answer(status: 200, body: Data("\"ok\"".utf8)))
        _ = try await withSSHPortBudget {
            try await store.powerOn(
                namespace: principal.namespace,
                name: name,
                on: nodes,
                sshPorts: $0,
                podName: podName,
                now: now,
                debit: .none,
                unitPrice: catalog.gpuSku(id: instance.cost.gpuSkuID).map { Pricing.effectivePrice(of: $0, at: now) }
            )
        }
    }

    /// `POST .../instances/{name}/renew {"CostTime": "+3D"}`: charges the new term up front
    /// and moves `ScheduleStopTimestamp`.
    /// A retry that carries the first call's `idempotencyKey` charges nothing and answers the
    /// instance as it is.
    public func renew(
        principal: Principal,
        cluster: String,
        name: String,
        body: JSONValue,
        idempotencyKey: String? = nil
    ) async throws -> InstanceWire {
        let instance = try await ownInstance(principal: principal, cluster: cluster, name: name)
        let fields = try JSONFields(body)
        let text = try fields.requiredString("CostTime")
        let term = try CostTime.parse(text, field: "CostTime")
        guard let sku = catalog.gpuSku(id: instance.cost.gpuSkuID), let unit = sku.selling.termUnit else {
            throw LatticeError.invalidField(
                "CostTime",
                "instance \(name) is pay-as-you-go; only prepaid terms are renewed"
            )
        }
        guard term.unit == unit else {
            throw LatticeError.invalidField(
                "CostTime",
                "SKU '\(sku.id)' is sold in terms of \(unit.rawValue); got '\(text)'"
            )
        }
        let now = clock.now()
        let price = Pricing.effectivePrice(of: sku, at: now)
        var rng = SystemRandomNumberGenerator()
        let chargeID = Identifiers.uuid(using: &rng)
        let timeZone = configuration.time.timeZone
        IdempotencyScope.current?.expect(.instance(namespace: principal.namespace, name: name))
        let renewed = try await store.updateInstance(namespace: principal.namespace, name: name) { current in
            let renewal = try InstanceLifecycle.renew(
                current,
                term: term,
                pricePerUnit: price,
                requestKey: idempotencyKey,
                chargeID: chargeID,
                timeZone: timeZone,
                now: now
            )
            return (renewal.instance, WalletDebit(required: renewal.charge.amount, charges: [renewal.charge]))
        }
        return InstanceWire(renewed, context: wire)
    }

    public func delete(principal: Principal, cluster: String, name: String?) async throws {
        guard let name, !name.isEmpty else { throw LatticeError.missingField("name (query parameter)") }
        let instance = try await ownInstance(principal: principal, cluster: cluster, name: name)
        let now = clock.now()
        _ = try await store.updateInstance(namespace: principal.namespace, name: instance.name) { current in
            InstanceLifecycle.delete(current, now: now)
        }
    }
}
