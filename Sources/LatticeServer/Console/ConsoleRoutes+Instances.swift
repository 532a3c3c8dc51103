import Foundation
import Hummingbird
import LatticeDomain

/// The console's Instances page: the namespace's instances with live status, their power
/// and delete actions, and the create form.
extension ConsoleRoutes {
    func registerInstances(_ console: RouterGroup<LatticeRequestContext>) {
        console.get("instances") { request, _ in
            try await signedIn(request) { visit, principal in
                try await instancesPage(visit, request, principal)
            }
        }
        console.get("instances.json") { request, _ in
            try await signedIn(request) { _, principal in
                try JSONResponse.encode(try await allInstances(principal).map(ConsoleView.LiveStatus.init))
            }
        }
        console.get("events") { request, _ in
            try await signedIn(request) { _, principal in
                EventStream.response(
                    namespace: principal.namespace,
                    after: try await api.eventStart(principal: principal, lastEventID: request.headers[.lastEventID]),
                    store: store,
                    hub: api.events,
                    format: api.configuration.time.format
                )
            }
        }
        console.post("instances") { request, context in
            try await signedInForm(request, context) { visit, principal, form in
                do {
                    let created = try await createInstance(principal, form)
                    return redirect(flashed("/console/instances", "Creating \(created.name).", visit), visit)
                } catch let error as LatticeError {
                    return try await instancesPage(visit, nil, principal, form: form, error: error)
                }
            }
        }
        console.post("instances/:cluster/:name/:verb") { request, context in
            try await signedInForm(request, context) { visit, principal, form in
                let name = try context.parameters.require("name")
                let verb = try context.parameters.require("verb")
                do {
                    try await instanceVerb(
                        principal,
                        form,
                        cluster: try context.parameters.require("cluster"),
                        name: name,
                        verb: verb
                    )
                    return redirect(flashed("/console/instances", Self.requested(name, verb), visit), visit)
                } catch let error as LatticeError {
                    return try await instancesPage(visit, nil, principal, error: error)
                }
            }
        }
    }

    static func requested(_ name: String, _ verb: String) -> String {
        "\(name): \(verb.replacingOccurrences(of: "_", with: " ")) requested."
    }

    func allInstances(_ principal: Principal) async throws -> [InstanceWire] {
        var all: [InstanceWire] = []
        for cluster in api.catalog.clusters {
            all += try await api.instances(
                principal: principal,
                cluster: cluster.name,
                page: PageRequest(page: 1, pageSize: 100)
            ).nodes
        }
        return all
    }

    /// The page; after a refused create, with the error above the form as it was filled in.
    func instancesPage(
        _ visit: Visit,
        _ request: Request?,
        _ principal: Principal,
        form: [String: String] = [:],
        error: LatticeError? = nil
    ) async throws -> Response {
        let instances = try await allInstances(principal).map {
            ConsoleView.InstanceRow($0, actionBase: "/console/instances/\($0.Region)/\($0.name)", admin: false)
        }
        let skus = try await api.gpuSkus(regionID: nil)
        let images = try await api.images(principal: principal, page: PageRequest(page: 1, pageSize: 100)).nodes
        let view = ConsoleView.InstancesPage(
            csrf: visit.csrf,
            table: ConsoleView.InstanceTable(instances, empty: "No instances yet."),
            regions: api.catalog.regions.map {
                ConsoleView.Choice(id: $0.id, name: $0.name, selected: form["region"] == $0.id)
            },
            skus: skus.map { ConsoleView.SKUChoice($0, selected: form["sku"] == $0.skusID) },
            images: images.filter { $0.status == "Ready" }.map {
                ConsoleView.Choice(id: $0.name, name: $0.name, selected: form["image"] == $0.name)
            },
            templates: try await api.templates(principal: principal, page: PageRequest(page: 1, pageSize: 100)).nodes
                .map { ConsoleView.Choice(id: $0.id, name: $0.name, selected: form["template"] == $0.id) },
            form: .init(
                costTime: form["costTime"] ?? "",
                size: form["size"] ?? "50",
                displayName: form["displayName"] ?? "",
                env: form["env"] ?? "",
                ports: form["ports"] ?? "",
                startupScript: form["startupScript"] ?? ""
            )
        )
        return show(
            visit,
            request,
            title: "Instances",
            page: "instances",
            template: "instances",
            view,
            error: error,
            live: ConsoleRoutes.ownLiveStatus
        )
    }

    func createInstance(_ principal: Principal, _ form: [String: String]) async throws -> InstanceWire {
        guard let sku = api.catalog.gpuSku(id: form["sku"] ?? "") else {
            throw LatticeError.invalidField("GPUSKUID", "choose a GPU")
        }
        var fields: [String: JSONValue] = [
            "Cost": .object([
                "CostType": .string(String(sku.sellingType)),
                "DiskSKUID": .string(api.catalog.diskSkus.first?.id ?? "1"),
                "GPUSKUID": .string(sku.id), "CostTime": .string(form["costTime"] ?? ""),
            ]),
            "VolumeMount": .array([.object(["Size": .string(form["size"] ?? "")])]),
            "namespace": .string(principal.namespace),
            "displayName": .string(form["displayName"] ?? ""),
            "image": .string(form["image"] ?? ""),
            "Region": .string(form["region"] ?? ""),
        ]
        // SPEC §11: what the form's text fields say, in the API's shape (the API checks it).
        if let template = form["template"], !template.isEmpty {
            fields["template"] = .string(template)
            fields["image"] = nil
        }
        if let env = try Self.variables(form["env"], field: "env") { fields["env"] = env }
        if let env = try Self.variables(form["secretEnv"], field: "secretEnv") { fields["secretEnv"] = env }
        if let script = form["startupScript"], !script.isEmpty {
            fields["startupScript"] = .string(script.replacingOccurrences(of: "\r\n", with: "\n"))
        }
        if let ports = try Self.ports(form["ports"]) { fields["ports"] = ports }
        return try await api.createInstance(principal: principal, cluster: sku.clusterName, body: .object(fields))
    }

    /// `NAME=value` lines as a JSON object; nil for none.
    static func variables(_ text: String?, field: String) throws -> JSONValue? {
        let lines = (text ?? "").split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard !lines.isEmpty else { return nil }
        var object: [String: JSONValue] = [:]
        for line in lines {
            guard let equals = line.firstIndex(of: "="), equals != line.startIndex else {
                throw LatticeError.invalidField(field, "each line is NAME=value, got '\(line.prefix(40))'")
            }
            object[String(line[..<equals])] = .string(String(line[line.index(after: equals)...]))
        }
        return .object(object)
    }

    /// `8000:api, 7860:ui:public` as the API's `ports`; nil for none.
    static func ports(_ text: String?) throws -> JSONValue? {
        let specs = (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard !specs.isEmpty else { return nil }
        return .array(
            try specs.map { spec in
                let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard let port = Int(parts[0]), parts.count <= 3, parts.count < 3 || parts[2] == "public" else {
                    throw LatticeError.invalidField(
                        "ports",
                        "write PORT[:NAME][:public], such as 8000:api; got '\(spec)'"
                    )
                }
                return .object([
                    "port": .number(Double(port)), "name": .string(parts.count > 1 ? parts[1] : ""),
                    "public": .bool(parts.count == 3),
                ])
            }
        )
    }

    /// `power_off` (saving an image if the form asks), `power_on` or `delete`.
    func instanceVerb(
        _ principal: Principal,
        _ form: [String: String],
        cluster: String,
        name: String,
        verb: String
    ) async throws {
        switch verb {
        case "power_off":
            var body: [String: JSONValue] = ["needSnapshot": .string(form["needSnapshot"] ?? "")]
            if form["needSnapshot"] == "true" {
                body["imageName"] = .string(form["imageName"] ?? "")
                body["tag"] = .string(form["tag"] ?? "")
            }
            try await api.powerOff(principal: principal, cluster: cluster, name: name, body: .object(body))
        case "power_on":
            try await api.powerOn(principal: principal, cluster: cluster, name: name)
        case "delete":
            try await api.delete(principal: principal, cluster: cluster, name: name)
        default:
            throw LatticeError.notFound("console action '\(verb.prefix(40))'")
        }
    }
}

extension ConsoleRoutes {
    /// The namespace's own instances' statuses, polled where the event stream is not at hand.
    static let ownLiveStatus = "/console/instances.json"
}

extension ConsoleView {
    /// What the pages' script polls for (`data-live`): each instance's name and status.
    struct LiveStatus: Codable {
        var name: String
        var status: String
        var statusReason: String

        init(_ instance: InstanceWire) {
            name = instance.name
            status = instance.status
            statusReason = instance.statusReason
        }
    }

    /// `instance-table.mustache`: rows, or a line saying there are none.
    struct InstanceTable {
        var instances: [InstanceRow]
        var hasInstances: Bool
        var emptyText: String

        init(_ instances: [InstanceRow], empty: String) {
            self.instances = instances
            hasInstances = !instances.isEmpty
            emptyText = empty
        }
    }

    /// An option of a `<select>`.
    struct Choice {
        var id: String
        var name: String
        var selected: Bool
    }

    /// A GPU SKU in the create form, with what the script shows as its price.
    struct SKUChoice {
        var id: String
        var region: String
        var price: String
        var unit: String
        var selected: Bool
        var label: String

        static let units = ["1": "/h", "2": "/month", "3": "/week", "4": "/day"]

        init(_ sku: GPUSKUWire, selected: Bool) {
            id = sku.skusID
            region = sku.regionID
            price = sku.effectivePrice
            unit = Self.units[sku.sellingType] ?? ""
            self.selected = selected
            label = "\(sku.gpuProduct) ×\(sku.gpuCounts) · \(price)\(unit) · \(sku.remainGPUCount) GPUs free"
        }
    }

    /// `instances.mustache`.
    struct InstancesPage {
        struct Form {
            var costTime: String
            var size: String
            var displayName: String
            var env: String
            var ports: String
            var startupScript: String
        }

        var csrf: String
        var table: InstanceTable
        var regions: [Choice]
        var skus: [SKUChoice]
        var images: [Choice]
        var templates: [Choice]
        var form: Form
    }
}
