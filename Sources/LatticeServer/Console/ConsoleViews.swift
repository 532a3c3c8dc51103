import Foundation
import LatticeDomain

/// What the console's templates are rendered with: plain structs whose stored properties
/// the templates name (swift-mustache reads them by reflection). A property that is nil is
/// looked up in the enclosing views, so the templates name optional ones with a leading
/// dot (`{{#.confirm}}`), which looks in the current view only.
enum ConsoleView {
    /// The frame of every page (`layout.mustache`).
    struct Layout {
        var title: String
        var page: String
        var live: String?
        /// The namespace's event stream, which tells the live status as it changes (`live`
        /// is polled only where there is no stream, or it fails).
        var events: String?
        var namespace: String?
        var isAdmin: Bool
        var nav: [NavLink]
        var flash: String?
        var error: String?
        var assetVersion: String
        var csrf: String
        var content: String
    }

    struct NavLink {
        var href: String
        var label: String
        var current: Bool
        var admin: Bool
    }

    /// The pages in the navigation, in order: a tenant's, then an admin's.
    static let tenantPages: [(page: String, label: String)] = [
        ("instances", "Instances"), ("catalog", "GPU catalog"), ("tokens", "API Credentials"),
        ("images", "Images"), ("billing", "Billing"), ("ssh-keys", "SSH keys"), ("activity", "Activity"),
    ]
    static let adminPages: [(page: String, label: String)] = [
        ("admin/tenants", "Tenants"), ("admin/instances", "All instances"), ("admin/nodes", "Nodes"),
        ("admin/prices", "Prices"),
    ]

    static func nav(current: String, isAdmin: Bool) -> [NavLink] {
        let tenant = tenantPages.map {
            NavLink(href: "/console/\($0.page)", label: $0.label, current: $0.page == current, admin: false)
        }
        guard isAdmin else { return tenant }
        return tenant
            + adminPages.enumerated().map { offset, item in
                NavLink(
                    href: "/console/\(item.page)",
                    label: item.label,
                    current: item.page == current,
                    admin: offset == 0
                )
            }
    }

    /// A one-button form (`button.mustache`) posting `fields` as hidden inputs, optionally
    /// confirmed first.
    struct Button {
        struct Field {
            var key: String
            var value: String
        }

        var action: String
        var label: String
        var confirm: String?
        var style: String
        var fields: [Field]

        init(
            _ label: String,
            action: String,
            confirm: String? = nil,
            style: String = "",
            fields: [String: String] = [:]
        ) {
            self.action = action
            self.label = label
            self.confirm = confirm
            self.style = style
            self.fields = fields.sorted { $0.key < $1.key }.map { Field(key: $0.key, value: $0.value) }
        }
    }

    /// One row of an instance table (`instance-row.mustache`), the tenant's or an admin's.
    struct InstanceRow {
        var name: String
        var displayName: String
        var tenant: String?
        var status: String
        var statusReason: String
        var gpus: String
        var price: String
        var node: String?
        var ssh: String
        var jupyter: String
        var running: Bool
        var startable: Bool
        var actionBase: String
        /// The instance's own page (the tenant's console; nil on the admin's list).
        var page: String?
        var powerOn: Button
        var delete: Button

        /// `actionBase` is where the row's forms post (`<base>/power_off` and so on);
        /// `admin` shows the namespace and node too.
        init(_ i: InstanceWire, actionBase: String, admin: Bool) {
            name = i.name
            displayName = i.displayName
            tenant = admin ? i.namespace : nil
            page = admin ? nil : actionBase
            status = i.status
            statusReason = i.statusReason
            gpus = "\(i.resources.GPUNum)×\(i.resources.GPUType)"
            price = i.annotations.first { $0.key.hasSuffix("/unit-price") }?.value ?? ""
            node = admin ? i.Pods.first.map(\.nodeScheduled) : nil
            ssh = i.servers.SSH.sshAddr
            jupyter = i.servers.Jupyterlab
            running = i.status == "Running"
            startable = i.status == "Stopped" || i.status == "Failed"
            self.actionBase = actionBase
            powerOn = Button("Power on", action: actionBase + "/power_on")
            delete = Button(
                "Delete",
                action: actionBase + "/delete",
                confirm: "Delete \(i.name) and its data disk?",
                style: "danger"
            )
        }
    }

    /// A GPU SKU as the catalog and prices pages list it.
    struct SKURow {
        var id: String
        var gpu: String
        var region: String
        var machine: String
        var billing: String
        var price: String
        var discount: String
        var now: String
        var free: Int

        static let billing = ["1": "pay-as-you-go (per hour)", "2": "monthly", "3": "weekly", "4": "daily"]

        init(_ sku: GPUSKUWire, regionName: String) {
            id = sku.skusID
            gpu = "\(sku.gpuProduct) ×\(sku.gpuCounts)"
            region = regionName
            machine = "\(sku.cpucores) CPU · \(sku.memoryCount) GiB"
            billing = Self.billing[sku.sellingType] ?? sku.sellingType
            price = Money(String(sku.price))?.description ?? String(sku.price)
            discount =
                sku.discountID.isEmpty ? "—" : "×\(sku.ratio) \(sku.discountStartTime) – \(sku.discountEndTime)"
            now = sku.effectivePrice
            free = sku.remainGPUCount
        }
    }

    /// `login.mustache`: the form, and a failure of its own (never text from the URL).
    struct LoginPage {
        var csrf: String
        var failed: Bool
    }

    /// `catalog.mustache`.
    struct CatalogPage {
        struct Region {
            var id: String
            var name: String
            var skus: [SKURow]
        }

        var regions: [Region]
    }
}
