import ArgumentParser
import Foundation
import LatticeClient
import LatticeComputeEngine
import LatticeDomain
import LatticeServer

/// `lattice host …`: preparing a GPU server to be rented out.
struct Host: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prepare this GPU server: find its GPUs and engine, write the catalog.",
        subcommands: [Init.self]
    )

    /// Finds what the host has, writes a catalog for it and the service's flags, and says
    /// what it checked at each step. Run it again at any time: it rewrites nothing that
    /// would come out the same.
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find the GPUs, the engine and GPU access in containers; write the catalog and lattice.env.",
            discussion: """
                Checks, in order: nvidia-smi's GPUs; Docker's or Podman's socket (or --engine); the \\
                NVIDIA container runtime (Docker) or a CDI spec (Podman); CPU cores and memory. Then \\
                writes --catalog (a SKU per GPU model for 1, 2, 4 and 8 GPUs, priced from --price or \\
                with placeholders marked in the file), validates it, and sets LATTICE_SERVE_FLAGS and \\
                LATTICE_BOOTSTRAP_TOKEN in --env-file, keeping a token already there. With --join URL \\
                it prints the node line to add to that running server's catalog instead.
                """
        )

        @Option(help: "The catalog to write.") var catalog = "/etc/lattice/catalog.yaml"
        @Option(help: "The service's environment file (lattice.service reads it).")
        var envFile = "/etc/lattice/lattice.env"
        @Option(help: "The engine's endpoint (default: the first of Docker's and Podman's sockets that answers).")
        var engine: String?
        @Option(
            parsing: .singleValue,
            help: "Price per GPU and hour of a model, as MODEL=AMOUNT (RTX-4090=2.50); repeat per model."
        )
        var price: [String] = []
        @Option(help: "The region's name.") var region = "local"
        @Option(help: "The host name tenants reach this server by (--public-host of lattice serve).")
        var publicHost: String?
        @Flag(help: "Rewrite a catalog that differs from what this host gives.") var force = false
        @Option(help: "A running Lattice server to add this host to: print the catalog lines to add there.")
        var join: String?

        func run() async throws {
            let gpus = try Self.findGPUs()
            let endpoint = try await Self.findEngine(engine)
            let gpuRequests = Self.gpuAccess(product: endpoint.product)
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let memory = Int(ProcessInfo.processInfo.physicalMemory >> 30)
            say("ok", "CPU and memory: \(cores) cores, \(memory) GiB")
            var prices: [String: Money] = [:]
            for item in price {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let amount = Money(parts[1]), amount > .zero else {
                    throw UsageError("--price \(item): give MODEL=AMOUNT, such as RTX-4090=2.50")
                }
                prices[parts[0]] = amount
            }
            let facts = HostFacts(
                hostname: Self.hostname(),
                gpus: gpus,
                cpuCores: cores,
                memoryGiB: memory,
                engineURL: endpoint.url,
                gpuRequests: gpuRequests,
                prices: prices,
                region: region
            )
            let models = Set(gpus.map { HostFacts.modelKey($0.name) })
            for model in prices.keys where !models.contains(model) {
                throw UsageError(
                    "--price \(model): this host has no such GPU (it has \(models.sorted().joined(separator: ", ")))"
                )
            }
            if models.count > 1 {
                say("warn", "GPUs of \(models.count) models: one node holds one model, so the catalog sells the first")
            }
            let text = facts.catalogYAML()
            // Validated before anything is written: a catalog lattice serve would refuse is never left behind.
            _ = try CatalogLoader.parse(text, source: catalog)
            if let join {
                return try await joining(join, facts: facts, text: text)
            }
            try write(text)
            let token = try updateEnvironment()
            let placeholders = models.subtracting(prices.keys)
            if !placeholders.isEmpty {
                say(
                    "warn",
                    "placeholder prices (1.00 per GPU-hour) for \(placeholders.sorted().joined(separator: ", ")):"
                        + " set them with --price or in \(catalog)"
                )
            }
            print("")
            print("admin token (namespace admin): \(token)")
            print("next: systemctl enable --now lattice   (or: lattice serve --catalog \(catalog))")
        }

        func say(_ mark: String, _ text: String) { print("[\(mark)] \(text)") }

        /// `nvidia-smi --query-gpu=name,memory.total --format=csv`.
        static func findGPUs() throws -> [HostFacts.GPU] {
            let arguments = ["--query-gpu=name,memory.total", "--format=csv"]
            guard let (status, output) = run("nvidia-smi", arguments) else {
                throw UsageError("GPUs: no nvidia-smi on PATH; install the NVIDIA driver first (it comes with it)")
            }
            guard status == 0 else {
                throw UsageError(
                    "GPUs: nvidia-smi \(arguments.joined(separator: " ")) failed (exit \(status)): \(output)"
                )
            }
            let gpus = try HostFacts.parseGPUs(csv: output)
            guard !gpus.isEmpty else { throw UsageError("GPUs: nvidia-smi lists none") }
            let summary = Dictionary(grouping: gpus, by: \.name).map { "\($0.value.count) × \($0.key)" }.sorted()
            print("[ok] GPUs (nvidia-smi): \(summary.joined(separator: ", "))")
            return gpus
        }

        /// The engine given, or the first socket of Docker's and Podman's usual places that answers.
        static func findEngine(_ given: String?) async throws -> (url: String, product: String) {
            var candidates: [String] = []
            if let given {
                candidates = [given.hasPrefix("/") ? "unix://" + given : given]
            } else {
                candidates = ["/var/run/docker.sock", "/run/podman/podman.sock"].map { "unix://" + $0 }
                if let runtime = ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] {
                    candidates.append("unix://\(runtime)/podman/podman.sock")
                }
            }
            var tried: [String] = []
            for url in candidates {
                if url.hasPrefix("unix://"), !FileManager.default.fileExists(atPath: String(url.dropFirst(7))) {
                    tried.append("\(url): no such socket")
                    continue
                }
                do {
                    let answer = try await EngineProbe.probe(EngineEndpoint(url: url))
                    print("[ok] engine: \(answer.product) \(answer.version) at \(url)")
                    return (url, answer.product)
                } catch {
                    tried.append("\(url): \(error)")
                }
            }
            throw UsageError(
                "engine: none answers (\(tried.joined(separator: "; "))). Start Docker, or Podman's socket"
                    + " (systemctl enable --now podman.socket), or name one with --engine"
            )
        }

        /// How containers get GPUs: Docker through the NVIDIA container runtime, Podman through CDI.
        static func gpuAccess(product: String) -> String {
            if product == "Podman" {
                let specs = ["/etc/cdi", "/var/run/cdi"].flatMap { directory in
                    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).map {
                        "\(directory)/\($0)"
                    }
                }.filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".json")) && $0.contains("nvidia") }
                if let spec = specs.first {
                    print("[ok] GPU access: CDI spec \(spec) (gpuRequests: cdi)")
                } else {
                    print(
                        "[warn] GPU access: no NVIDIA CDI spec in /etc/cdi or /var/run/cdi; install"
                            + " nvidia-container-toolkit and run"
                            + " `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`"
                            + " (gpuRequests: cdi written all the same)"
                    )
                }
                return "cdi"
            }
            let daemon = (try? String(contentsOfFile: "/etc/docker/daemon.json", encoding: .utf8)) ?? ""
            if run("nvidia-container-runtime", ["--version"]) != nil || daemon.contains("nvidia") {
                print("[ok] GPU access: the NVIDIA container runtime (gpuRequests: docker)")
            } else {
                print(
                    "[warn] GPU access: no nvidia-container-runtime; install nvidia-container-toolkit and run"
                        + " `nvidia-ctk runtime configure --runtime=docker` (gpuRequests: docker written all the same)"
                )
            }
            return "docker"
        }

        func write(_ text: String) throws {
            let manager = FileManager.default
            if let existing = try? String(contentsOfFile: catalog, encoding: .utf8) {
                if existing == text {
                    say("ok", "catalog \(catalog): unchanged")
                    return
                }
                guard force else {
                    throw UsageError(
                        "catalog \(catalog) exists and differs from what this host gives;"
                            + " edit it, or --force to rewrite it"
                    )
                }
            }
            try manager.createDirectory(
                atPath: (catalog as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true
            )
            try text.write(toFile: catalog, atomically: true, encoding: .utf8)
            try manager.setAttributes([.posixPermissions: 0o640], ofItemAtPath: catalog)
            say("ok", "catalog \(catalog): written and valid")
        }

        /// Sets `LATTICE_SERVE_FLAGS` and `LATTICE_BOOTSTRAP_TOKEN` in the environment file,
        /// keeping its other lines and a token already there; returns the token.
        func updateEnvironment() throws -> String {
            let existing = (try? String(contentsOfFile: envFile, encoding: .utf8)) ?? ""
            var lines = existing.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.last == "" { lines.removeLast() }
            var token = lines.first { $0.hasPrefix("LATTICE_BOOTSTRAP_TOKEN=") }.map {
                String($0.dropFirst("LATTICE_BOOTSTRAP_TOKEN=".count)).trimmingCharacters(
                    in: CharacterSet(charactersIn: "\"")
                )
            }
            if token?.isEmpty ?? true {
                var generator = SystemRandomNumberGenerator()
                token = APITokenFormat.generate(using: &generator)
            }
            var flags = "--host 0.0.0.0 --catalog \(catalog)"
            if let publicHost { flags += " --public-host \(publicHost)" }
            let wanted = ["LATTICE_SERVE_FLAGS=\"\(flags)\"", "LATTICE_BOOTSTRAP_TOKEN=\(token!)"]
            lines.removeAll { $0.hasPrefix("LATTICE_SERVE_FLAGS=") || $0.hasPrefix("LATTICE_BOOTSTRAP_TOKEN=") }
            if existing.isEmpty {
                lines = ["# Written by `lattice host init`; lattice.service reads it (systemctl restart lattice)."]
            }
            let text = (lines + wanted).joined(separator: "\n") + "\n"
            if text == existing {
                say("ok", "environment \(envFile): unchanged")
            } else {
                try FileManager.default.createDirectory(
                    atPath: (envFile as NSString).deletingLastPathComponent,
                    withIntermediateDirectories: true
                )
                try text.write(toFile: envFile, atomically: true, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: envFile)
                say("ok", "environment \(envFile): LATTICE_SERVE_FLAGS=\"\(flags)\" and the bootstrap token")
            }
            return token!
        }

        /// `--join`: this host as a node of the running server's catalog (an engine it reaches over TCP).
        func joining(_ url: String, facts: HostFacts, text: String) async throws {
            let model = facts.gpus.first.map { HostFacts.modelKey($0.name) } ?? "GPU"
            guard let base = URL(string: url), base.scheme == "http" || base.scheme == "https" else {
                throw UsageError("--join \(url): give the server's URL, such as http://10.0.0.1:8080")
            }
            let client = LatticeClient(baseURL: base, namespace: nil, token: "")
            if (try? await client.health()) == true {
                say("ok", "server \(url): answers /healthz")
            } else {
                say("warn", "server \(url): /healthz does not answer; the lines below are for its catalog all the same")
            }
            print("")
            print("Add this node to an engine cluster of \(url)'s catalog, then restart that server:")
            print("")
            print(
                "  - {name: \(facts.hostname), gpuModel: \(model), gpuCount: \(facts.gpus.count),"
                    + " cpuCores: \(facts.cpuCores), memoryGiB: \(facts.memoryGiB),"
            )
            print("     engine: {url: \"tcp://\(facts.hostname):2376\", ca: /etc/lattice/tls/ca.pem,")
            print("              cert: /etc/lattice/tls/cert.pem, key: /etc/lattice/tls/key.pem}}")
            print("")
            print("The server reaches this host's engine over TCP with TLS (docs/engine.md, \"Several hosts\");")
            print("this host's engine is \(facts.engineURL) here.")
        }

        static func hostname() -> String {
            let name = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "gpu-host"
            let cleaned = name.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "-" }
            return cleaned.isEmpty ? "gpu-host" : cleaned
        }

        /// Runs a program found on PATH; nil when there is none.
        static func run(_ program: String, _ arguments: [String]) -> (Int32, String)? {
            let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
                .map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
            guard let path else { return nil }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            do { try process.run() } catch { return nil }
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
    }
}
