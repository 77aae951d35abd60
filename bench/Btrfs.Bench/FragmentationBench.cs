// Invoke-BtrfsDefrag against `btrfs filesystem defragment -t`, and Measure-Fragmentation -Recurse against
// `find -type f -exec filefrag {} +`, each side by side in one run (issue #7). Run as root:
//   dotnet run -c Release --project bench/Btrfs.Bench -- defrag [runs]
//   dotnet run -c Release --project bench/Btrfs.Bench -- measure [runs]
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
    using System.Security.Cryptography;

    internal static class FragmentationBench
    {
        internal static int Defrag(int runs)
        {
            return WithBtrfs("16G", mnt =>
            {
                Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Program.Sh("btrfs", "--version").Trim()}, {runs} runs, caches dropped before every timed command");
                using Runspace rs = Open();
                Console.WriteLine("| run | extents before | Invoke-BtrfsDefrag + sync | extents after | btrfs fi defrag -t 32M + sync | extents after | ratio |");
                Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
                var ratios = new List<double>();
                var oursTimes = new List<double>();
                var anchorTimes = new List<double>();
                for (int run = 0; run < runs; run++)
                {
                    string a = Path.Combine(mnt, "module.img");
                    string b = Path.Combine(mnt, "anchor.img");
                    Fragment(a, 200 << 20, 60_000, seed: 11);
                    Fragment(b, 200 << 20, 60_000, seed: 11);
                    Program.Sh("sync");
                    long before = Extents(a);
                    long beforeAnchor = Extents(b);
                    if (Math.Abs(before - beforeAnchor) > before / 100 || before < 40_000) // the same writes; FIEMAP may merge a neighbour differently
                    {
                        throw new InvalidOperationException($"the copies differ or are not fragmented enough: {before} / {beforeAnchor} extents");
                    }

                    double tm = 0, ta = 0;
                    for (int k = 0; k < 2; k++)
                    {
                        DropCaches();
                        var sw = Stopwatch.StartNew();
                        if ((k + run) % 2 == 0)
                        {
                            Invoke(rs, "param($f) Invoke-BtrfsDefrag -LiteralPath $f -ExtentThreshold 32MB | Out-Null", a);
                            Program.Sh("sync");
                            tm = sw.Elapsed.TotalSeconds;
                        }
                        else
                        {
                            Program.Sh("btrfs", "filesystem", "defragment", "-t", "32M", b);
                            Program.Sh("sync");
                            ta = sw.Elapsed.TotalSeconds;
                        }
                    }

                    if (Hash(a) != Hash(b))
                    {
                        throw new InvalidOperationException("the defragmented copies differ");
                    }

                    ratios.Add(tm / ta);
                    oursTimes.Add(tm);
                    anchorTimes.Add(ta);
                    Console.WriteLine($"| {run + 1} | {before:N0} | {tm:F2} s | {Extents(a):N0} | {ta:F2} s | {Extents(b):N0} | {tm / ta:F2}× |");
                    File.Delete(a);
                    File.Delete(b);
                }

                Console.WriteLine($"median ratio {Median(ratios):F2}×");
                Summary.Add("Invoke-BtrfsDefrag vs btrfs filesystem defragment (+ sync)", Median(oursTimes), Median(anchorTimes));
            });
        }

        internal static int Measure(int runs)
        {
            return WithBtrfs("8G", mnt =>
            {
                Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Program.Sh("filefrag", "-V").Trim()}, {runs} runs, warm cache");
                string tree = Path.Combine(mnt, "tree");
                MakeTree(tree, 10_000);
                Program.Sh("sync");
                using Runspace rs = Open();
                string script = "param($d) Measure-Fragmentation -LiteralPath $d -Recurse | Out-Null";
                string summary = "param($d) Measure-Fragmentation -LiteralPath $d -Recurse -Summary | Out-Null";
                Invoke(rs, script, tree); // warm
                Program.Sh("bash", "-c", "find \"$1\" -type f -exec filefrag {} + > /dev/null", "_", tree);
                var module = new List<double>();
                var moduleSummary = new List<double>();
                var anchor = new List<double>();
                for (int run = 0; run < runs; run++)
                {
                    var sw = Stopwatch.StartNew();
                    Invoke(rs, script, tree);
                    module.Add(sw.Elapsed.TotalSeconds);
                    sw.Restart();
                    Invoke(rs, summary, tree);
                    moduleSummary.Add(sw.Elapsed.TotalSeconds);
                    sw.Restart();
                    Program.Sh("bash", "-c", "find \"$1\" -type f -exec filefrag {} + > /dev/null", "_", tree);
                    anchor.Add(sw.Elapsed.TotalSeconds);
                }

                Console.WriteLine("| files | Measure-Fragmentation -Recurse \\| Out-Null | same with -Summary | find -type f -exec filefrag {} + | ratio (per-file objects) |");
                Console.WriteLine("|---:|---:|---:|---:|---:|");
                Console.WriteLine($"| 10,003 | {Median(module):F2} s | {Median(moduleSummary):F2} s | {Median(anchor):F2} s | {Median(module) / Median(anchor):F2}× |");
                Summary.Add("Measure-Fragmentation -Recurse vs find + filefrag", Median(module), Median(anchor));
                Console.WriteLine($"<!-- module {Join(module)}; summary {Join(moduleSummary)}; filefrag {Join(anchor)} -->");

                Console.WriteLine();
                Console.WriteLine("| files | peak RSS growth | peak managed heap |");
                Console.WriteLine("|---:|---:|---:|");
                foreach (int n in new[] { 2_000, 10_000, 40_000 })
                {
                    string t = Path.Combine(mnt, "mem-" + n);
                    MakeTree(t, n);
                    string[] mem = Program.Sh("dotnet", Assembly.GetExecutingAssembly().Location, "measure-memory", t).Trim().Split(' ');
                    Console.WriteLine($"| {n + 3:N0} | {mem[0]} | {mem[1]} |");
                }
            });
        }

        /// <summary>Child process: peak RSS growth and managed heap of one Measure-Fragmentation -Recurse.</summary>
        internal static int MeasureMemory(string tree)
        {
            using Runspace rs = Open();
            Invoke(rs, "param($d) Measure-Fragmentation -LiteralPath $d -Threshold 4096 | Out-Null", Directory.GetFiles(tree, "*", SearchOption.AllDirectories)[0]);
            Console.WriteLine(Program.PeakMemory(() => Invoke(rs, "param($d) Measure-Fragmentation -LiteralPath $d -Recurse | Out-Null", tree)));
            return 0;
        }

        /// <summary>n small files (4–64 KiB) in 100 directories, plus three large fragmented files.</summary>
        internal static void MakeTree(string root, int n)
        {
            var rng = new Random(1);
            byte[] data = new byte[64 * 1024];
            rng.NextBytes(data);
            for (int i = 0; i < n; i++)
            {
                string dir = Path.Combine(root, "d" + (i % 100).ToString(CultureInfo.InvariantCulture));
                Directory.CreateDirectory(dir);
                using var f = new FileStream(Path.Combine(dir, $"f{i}.dat"), FileMode.CreateNew, FileAccess.Write);
                f.Write(data, 0, 4096 * (1 + rng.Next(16)));
            }

            for (int i = 0; i < 3; i++)
            {
                Fragment(Path.Combine(root, $"big{i}.img"), 32 << 20, 5000, seed: i);
            }
        }

        /// <summary>The reference's fragmenter: a sequential fill, then random 4 KiB overwrites with an fsync every 64.</summary>
        private static void Fragment(string path, int size, int writes, int seed)
        {
            var rng = new Random(seed);
            byte[] chunk = new byte[1 << 20];
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
            for (int off = 0; off < size; off += chunk.Length)
            {
                rng.NextBytes(chunk);
                fs.Write(chunk);
            }

            fs.Flush(flushToDisk: true);
            byte[] block = new byte[4096];
            for (int i = 0; i < writes; i++)
            {
                rng.NextBytes(block);
                fs.Position = rng.Next(size / 4096) * 4096L;
                fs.Write(block);
                if (i % 64 == 63)
                {
                    fs.Flush(flushToDisk: true);
                }
            }

            fs.Flush(flushToDisk: true);
        }

        internal static int WithBtrfs(string size, Action<string> body) => WithFileSystem("btrfs", size, body);

        /// <summary>A loop filesystem of its own (btrfs, or xfs with reflink), mounted for <paramref name="body"/>, then removed.</summary>
        internal static int WithFileSystem(string kind, string size, Action<string> body)
        {
            string work = $"/tmp/btrfs-bench-{kind}-{Environment.ProcessId}";
            string image = Path.Combine(work, "bench.img");
            string mnt = Path.Combine(work, "mnt");
            Directory.CreateDirectory(mnt);
            try
            {
                Program.Sh("truncate", "-s", size, image);
                if (kind == "xfs")
                {
                    Program.Sh("mkfs.xfs", "-q", "-f", "-m", "reflink=1", image);
                }
                else
                {
                    Program.Sh("mkfs.btrfs", "-q", "-f", image);
                }

                Program.Sh("mount", "-o", "loop", image, mnt);
                body(mnt);
            }
            finally
            {
                Program.Shell("umount", mnt);
                Directory.Delete(work, recursive: true);
            }

            return 0;
        }

        internal static Runspace Open()
        {
            Runspace rs = RunspaceFactory.CreateRunspace(Program.Iss.Value);
            rs.Open();
            return rs;
        }

        internal static void Invoke(Runspace rs, string script, params string[] args)
        {
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            bool verbose = Environment.GetEnvironmentVariable("BENCH_VERBOSE") == "1";
            ps.AddScript(verbose ? script.Replace("param($d, $t) ", "param($d, $t) $VerbosePreference = 'Continue'; ", StringComparison.Ordinal) : script);
            foreach (string arg in args)
            {
                ps.AddArgument(arg);
            }

            var t0 = Stopwatch.StartNew();
            if (verbose)
            {
                ps.Streams.Verbose.DataAdded += (s, e) => Console.WriteLine($"  {t0.Elapsed.TotalSeconds:F3} {((PSDataCollection<VerboseRecord>)s!)[e.Index].Message}");
            }

            ps.Invoke();
            if (ps.HadErrors)
            {
                throw new InvalidOperationException(string.Join("; ", ps.Streams.Error));
            }
        }

        internal static long Extents(string path)
        {
            var psi = new ProcessStartInfo("filefrag", new[] { "-v", path }) { RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            long n = 0;
            while (p.StandardOutput.ReadLine() is string line)
            {
                string t = line.TrimStart();
                n += t.Length > 0 && char.IsDigit(t[0]) && t.Contains(':', StringComparison.Ordinal) && t.Contains("..", StringComparison.Ordinal) ? 1 : 0;
            }

            p.WaitForExit();
            return n;
        }

        internal static string Hash(string path)
        {
            using FileStream fs = File.OpenRead(path);
            return Convert.ToHexString(SHA256.HashData(fs));
        }

        internal static void DropCaches()
        {
            Program.Sh("sync");
            File.WriteAllText("/proc/sys/vm/drop_caches", "3");
        }

        internal static double Median(List<double> xs) => Summary.Median(xs);

        internal static string Join(List<double> xs) => string.Join(' ', xs.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)));
    }
}
