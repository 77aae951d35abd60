// Benchmark (issue #2, section 6). Run as root:
//   dotnet run -c Release --project bench/Btrfs.Bench -- run [extents...]       (default 50000 200000)
// It makes a loop-mounted btrfs, a file with N extents (4 KiB of data every 8 KiB) plus a reflink
// copy (so every extent is shared), and reports per N: extents/s of the Core FIEMAP reader, of
// `Get-BtrfsExtent | Where-Object IsShared` in the hosted engine, wall time of `filefrag -v`, and the
// peak memory of the cmdlet run, measured in a child process of its own.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Btrfs.Bench
{
    using System;
    using System.Collections.Generic;
    using System.Diagnostics;
    using System.Globalization;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using System.Management.Automation.Runspaces;
    using System.Reflection;
    using System.Runtime.Loader;
    using Btrfs.Kernel;
    using System.Threading;
    using Btrfs.Core;

    public static class Program
    {
        internal static string repoRoot = string.Empty;

        public static int Main(string[] args)
        {
            repoRoot = FindRoot();
            AssemblyLoadContext.Default.Resolving += (ctx, name) => name.Name == "Btrfs" ? ctx.LoadFromAssemblyPath(Path.Combine(repoRoot, "bin", "Btrfs.dll")) : null;
            return args.FirstOrDefault() switch
            {
                "cmdlet-memory" => CmdletMemory(args[1]),
                "variants" => Variants(args[1]),
                "nocow" => NoCowBench.Run(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3),
                "nocow-memory" => NoCowBench.Memory(args[1]),
                "defrag" => FragmentationBench.Defrag(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3),
                "measure" => FragmentationBench.Measure(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5),
                "measure-memory" => FragmentationBench.MeasureMemory(args[1]),
                "reflink" => ReflinkBench.Reflink(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3),
                "reflink-force" => ReflinkBench.ReflinkForce(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3),
                "dedupe" => ReflinkBench.Dedupe(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3),
                "swapdefrag" => SwapDefragBench.Run(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3),
                "usage" => InspectBench.Usage(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5),
                "usage-memory" => InspectBench.UsageMemory(args[1]),
                "usage-variants" => InspectBench.UsageVariants(),
                "subvolumes" => SubvolumeBench.Run(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3),
                "subvolumes-memory" => SubvolumeBench.MemoryChild(args[1]),
                "scheduled" => ScheduledDefragBench.Run(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1),
                "duplicates" => DuplicateBench.Run(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1),
                "duplicates-child" => DuplicateBench.Child(args[1]),
                "owners" => InspectBench.Owners(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3),
                "all" => All(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3),
                "run" or null => RunAll(args.Length > 1 ? args.Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray() : new[] { 50_000, 200_000 }),
                _ => Usage(),
            };
        }

        private static int Usage()
        {
            Console.Error.WriteLine("usage: Btrfs.Bench run [extents...] | cmdlet-memory <file> | variants <file> | nocow [runs] | defrag [runs] | measure [runs] | reflink [runs] | reflink-force [runs] | dedupe [runs] | usage [runs] | owners [runs] | swapdefrag [runs] | subvolumes [runs] | duplicates [runs] | scheduled [runs] | all [runs]");
            return 2;
        }

        /// <summary>
        /// Every comparison with an anchor tool, each with <paramref name="runs"/> runs (medians, alternating
        /// which side goes first), then one table: comparison, ours, anchor, ratio, target, met.
        /// </summary>
        private static int All(int runs)
        {
            int failed = 0;
            foreach ((string name, Func<int> bench) in new (string, Func<int>)[]
            {
                ("usage", () => InspectBench.Usage(Math.Max(runs, 5))),
                ("measure", () => FragmentationBench.Measure(Math.Max(runs, 5))),
                ("defrag", () => FragmentationBench.Defrag(runs)),
                ("nocow", () => NoCowBench.Run(Math.Max(runs, 5))),
                ("reflink", () => ReflinkBench.Reflink(Math.Max(runs, 5))),
                ("reflink-force", () => ReflinkBench.ReflinkForce(runs)),
                ("dedupe", () => ReflinkBench.Dedupe(Math.Max(runs, 5))),
                ("swapdefrag", () => SwapDefragBench.Run(Math.Max(runs, 5))),
                ("owners", () => InspectBench.Owners(runs)),
                ("subvolumes", () => SubvolumeBench.Run(runs)),
                ("duplicates", () => DuplicateBench.Run(runs)),
                ("scheduled", () => ScheduledDefragBench.Run(runs)),
            })
            {
                Console.WriteLine($"## {name}");
                failed += bench() == 0 ? 0 : 1;
                Console.WriteLine();
            }

            Summary.Print();
            return failed;
        }

        private static int RunAll(int[] sizes)
        {
            string work = $"/tmp/btrfs-bench-{Environment.ProcessId}";
            string image = Path.Combine(work, "bench.img");
            string mnt = Path.Combine(work, "mnt");
            Directory.CreateDirectory(mnt);
            try
            {
                Sh("truncate", "-s", "4G", image);
                Sh("mkfs.btrfs", "-q", "-f", image);
                Sh("mount", "-o", "loop", image, mnt);
                Console.WriteLine($"kernel {Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Sh("filefrag", "-V").Trim()}");
                Console.WriteLine("| extents | Core reader | Get-BtrfsExtent \\| Where-Object IsShared | filefrag -v (wall) | Core / filefrag time | cmdlet peak RSS growth | cmdlet peak managed heap |");
                Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
                foreach (int n in sizes)
                {
                    string file = Path.Combine(mnt, $"frag-{n}.img");
                    MakeFragmentedFile(file, n);
                    Sh("cp", "--reflink=always", file, file + ".copy");
                    Sh("sync");

                    long count = CoreCount(file);
                    if (count < n)
                    {
                        throw new InvalidOperationException($"{file}: expected {n} extents, FIEMAP gave {count}");
                    }

                    // Warm: one untimed pass each, then the median of several.
                    long shared = CmdletSharedCount(file);
                    if (shared != count)
                    {
                        throw new InvalidOperationException($"{file}: {shared} of {count} extents passed Where-Object IsShared");
                    }

                    double core = Median(5, () => CoreCount(file));
                    double fileFrag = Median(5, () => Filefrag(file));
                    double cmdlet = Median(3, () => CmdletShared(file));
                    string[] mem = Sh("dotnet", Assembly.GetExecutingAssembly().Location, "cmdlet-memory", file).Trim().Split(' ');
                    Console.WriteLine(
                        $"| {count:N0} | {count / core:N0} ext/s ({core * 1000:F1} ms) | {count / cmdlet:N0} ext/s ({cmdlet * 1000:F0} ms) | {fileFrag * 1000:F1} ms ({count / fileFrag:N0} ext/s) | {core / fileFrag:F2}× | {mem[0]} | {mem[1]} |");
                    File.Delete(file + ".copy");
                    File.Delete(file);
                }
            }
            finally
            {
                Shell("umount", mnt);
                Directory.Delete(work, recursive: true);
            }

            return 0;
        }

        /// <summary>4 KiB of data every 8 KiB: each block is its own extent (holes between).</summary>
        private static void MakeFragmentedFile(string path, int extents)
        {
            byte[] block = new byte[4096];
            new Random(42).NextBytes(block);
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
            for (int i = 0; i < extents; i++)
            {
                fs.Position = (long)i * 8192;
                block[0] = (byte)i;
                fs.Write(block);
            }

            fs.Flush(flushToDisk: true);
        }

        private static long CoreCount(string path)
        {
            using OpenFile f = OpenFile.OpenRead(path);
            long n = 0;
            foreach (FileExtent e in ExtentMap.Read(f, new ExtentQuery()))
            {
                n += e.Length > 0 ? 1 : 0;
            }

            return n;
        }

        private static long Filefrag(string path)
        {
            var psi = new ProcessStartInfo("filefrag", new[] { "-v", path }) { RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            long lines = 0;
            while (p.StandardOutput.ReadLine() is not null)
            {
                lines++;
            }

            p.WaitForExit();
            return lines;
        }

        internal static readonly Lazy<InitialSessionState> Iss = new(() =>
        {
            var iss = InitialSessionState.CreateDefault2();
            iss.ImportPSModule(Path.Combine(repoRoot, "Btrfs.psd1"));
            return iss;
        });

        /// <summary>The timed pipeline: `Get-BtrfsExtent -LiteralPath $f | Where-Object IsShared | Out-Null`.</summary>
        private static long CmdletShared(string path) => Invoke("param($f) Get-BtrfsExtent -LiteralPath $f | Where-Object IsShared | Out-Null", path);

        /// <summary>Untimed check that the timed pipeline really filters every extent through.</summary>
        private static long CmdletSharedCount(string path) => Invoke("param($f) @(Get-BtrfsExtent -LiteralPath $f | Where-Object IsShared).Count", path);

        private static long Invoke(string script, string path)
        {
            using Runspace rs = RunspaceFactory.CreateRunspace(Iss.Value);
            rs.Open();
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            var result = ps.AddScript(script).AddArgument(path).Invoke();
            if (ps.HadErrors)
            {
                throw new InvalidOperationException(string.Join("; ", ps.Streams.Error));
            }

            return result.Count == 1 ? Convert.ToInt64(result[0].BaseObject, CultureInfo.InvariantCulture) : 0;
        }

        /// <summary>Diagnostic: where the pipeline's time goes, for an existing fragmented file.</summary>
        private static int Variants(string path)
        {
            long n = CoreCount(path);
            Console.WriteLine($"{path}: {n} extents; Core reader {n / Median(5, () => CoreCount(path)):N0} ext/s");
            foreach (string script in new[]
            {
                "param($f) $null = Get-BtrfsExtent -LiteralPath $f",
                "param($f) Get-BtrfsExtent -LiteralPath $f | Out-Null",
                "param($f) Get-BtrfsExtent -LiteralPath $f | Where-Object IsShared | Out-Null",
                "param($f) Get-BtrfsExtent -LiteralPath $f | Where-Object { $_.IsShared } | Out-Null",
                "param($f) Get-BtrfsExtent -LiteralPath $f | Where-Object { $true } | Out-Null",
                "param($f) $null = 1..200000 | Where-Object { $true }",
                "param($f) $null = 1..200000 | Where-Object IsShared",
                "param($f) $null = 1..200000 | ForEach-Object { $_ }",
            })
            {
                double t = Median(3, () => Invoke(script, path));
                Console.WriteLine($"{n / t,12:N0} ext/s  {t * 1000,8:F0} ms  {script}");
            }

            return 0;
        }

        /// <summary>Child process: peak RSS growth (VmHWM after - before) and peak managed heap of one cmdlet run.</summary>
        private static int CmdletMemory(string path)
        {
            // Warm the engine on a tiny pipeline so the baseline includes PowerShell itself.
            using Runspace rs = RunspaceFactory.CreateRunspace(Iss.Value);
            rs.Open();
            using (var warm = PowerShell.Create())
            {
                warm.Runspace = rs;
                warm.AddScript("Get-BtrfsExtent -LiteralPath $args[0] -Length 65536 | Where-Object IsShared | Out-Null").AddArgument(path).Invoke();
            }

            Console.WriteLine(PeakMemory(() =>
            {
                using var ps = PowerShell.Create();
                ps.Runspace = rs;
                ps.AddScript("Get-BtrfsExtent -LiteralPath $args[0] | Where-Object IsShared | Out-Null").AddArgument(path).Invoke();
            }));
            return 0;
        }

        /// <summary>
        /// Runs <paramref name="run"/> after a full collection and returns "RSS-growthMiB heapMiB": the
        /// growth of the peak resident set (VmHWM) and the peak managed heap, sampled every 2 ms.
        /// </summary>
        internal static string PeakMemory(Action run)
        {
            GC.Collect();
            long before = VmHwm();
            long peakHeap = 0;
            using var done = new ManualResetEventSlim();
            var sampler = new Thread(() =>
            {
                while (!done.Wait(2))
                {
                    peakHeap = Math.Max(peakHeap, GC.GetTotalMemory(false));
                }
            });
            sampler.Start();
            try
            {
                run();
            }
            finally
            {
                done.Set();
                sampler.Join();
            }

            return $"{(VmHwm() - before) / 1024.0:F1}MiB {peakHeap / 1048576.0:F1}MiB";
        }

        internal static long VmHwm()
        {
            string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture); // KiB
        }

        private static double Median(int runs, Func<long> action)
        {
            action();
            var times = new List<double>();
            for (int i = 0; i < runs; i++)
            {
                var sw = Stopwatch.StartNew();
                action();
                times.Add(sw.Elapsed.TotalSeconds);
            }

            times.Sort();
            return times[times.Count / 2];
        }

        internal static string Sh(string file, params string[] args)
        {
            var (rc, output) = Shell(file, args);
            return rc == 0 ? output : throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit {rc}");
        }

        internal static (int Rc, string Output) Shell(string file, params string[] args)
        {
            var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            string o = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, o);
        }

        private static string FindRoot()
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "Btrfs.psd1")))
                {
                    return d.FullName;
                }
            }

            throw new InvalidOperationException("run from inside the repository");
        }
    }
}
