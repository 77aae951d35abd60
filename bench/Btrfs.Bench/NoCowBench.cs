// ConvertTo-NoCow against the manual "touch, chattr +C, cp --reflink=never --sparse=always, mv" on identical
// copies, in one run (issue #5). Run as root:
//   dotnet run -c Release --project bench/Btrfs.Bench -- nocow [runs]
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

    internal static class NoCowBench
    {
        private const string TreeAnchor = "set -e; chattr +C \"$1\"; conv() { t=\"$(dirname \"$1\")/.$(basename \"$1\").anchor\"; touch \"$t\"; chattr +C \"$t\"; cp --reflink=never --sparse=always \"$1\" \"$t\"; mv \"$t\" \"$1\"; }; for f in \"$1\"/*; do conv \"$f\"; done";

        private const int TreeFiles = 200;

        private const string Anchor = "set -e; t=\"$(dirname \"$1\")/.$(basename \"$1\").anchor\"; touch \"$t\"; chattr +C \"$t\"; cp --reflink=never --sparse=always \"$1\" \"$t\"; mv \"$t\" \"$1\"";

        internal static int Run(int runs)
        {
            string work = $"/tmp/btrfs-bench-nocow-{Environment.ProcessId}";
            string image = Path.Combine(work, "bench.img");
            string mnt = Path.Combine(work, "mnt");
            Directory.CreateDirectory(mnt);
            try
            {
                Program.Sh("truncate", "-s", "8G", image);
                Program.Sh("mkfs.btrfs", "-q", "-f", image);
                Program.Sh("mount", "-o", "loop", image, mnt);
                Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Program.Sh("cp", "--version").Split('\n')[0]}, {runs} runs per case, caches dropped before every timed command");
                using Runspace rs = RunspaceFactory.CreateRunspace(Program.Iss.Value);
                rs.Open();
                Convert(rs, null); // warm the engine and the module

                // And the conversion's own code, on a small file: the runs measure the copy, not the first call's JIT.
                string warm = Path.Combine(mnt, "warm.img");
                Write(warm, 1L << 20, dataEvery: 0);
                Convert(rs, warm);
                File.Delete(warm);

                Console.WriteLine("| file | ConvertTo-NoCow (incl. fsync) | cp + chattr + mv | same + sync | ratio to cp…mv + sync | ratio to cp…mv alone |");
                Console.WriteLine("|---|---:|---:|---:|---:|---:|");
                foreach ((string name, Action<string> make) in new (string, Action<string>)[]
                {
                    ("1 GiB, all data", p => Write(p, 1L << 30, dataEvery: 0)),
                    ("1 GiB sparse, 100 MiB data", p => Write(p, 1L << 30, dataEvery: 10)),
                })
                {
                    var module = new List<double>();
                    var anchor = new List<double>();
                    var anchorSync = new List<double>();
                    for (int run = 0; run < runs; run++)
                    {
                        string m = Path.Combine(mnt, "module.img");
                        string a = Path.Combine(mnt, "anchor.img");
                        make(m);
                        make(a);
                        Program.Sh("sync");

                        Alternate(run, () => Convert(rs, m), Anchor, a, module, anchor, anchorSync);

                        Check(m, a);
                        File.Delete(m);
                        File.Delete(a);
                    }

                    double mm = Median(module), am = Median(anchor), asm = Median(anchorSync);
                    Console.WriteLine($"| {name} | {mm:F2} s | {am:F2} s | {asm:F2} s | {mm / asm:F2}× | {mm / am:F2}× |");
                    Summary.Add($"ConvertTo-NoCow vs cp + chattr + mv + sync ({name})", mm, asm);
                    Console.WriteLine($"<!-- {name}: module {string.Join(' ', module.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))}; anchor {string.Join(' ', anchor.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))}; anchor+sync {string.Join(' ', anchorSync.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))} -->");
                }

                Tree(rs, mnt, runs);

                Console.WriteLine();
                Console.WriteLine("| file | peak RSS growth during ConvertTo-NoCow | peak managed heap |");
                Console.WriteLine("|---|---:|---:|");
                foreach (long size in new[] { 64L << 20, 256L << 20, 1L << 30 })
                {
                    string f = Path.Combine(mnt, "mem.img");
                    Write(f, size, 0);
                    Program.Sh("sync");
                    string[] mem = Program.Sh("dotnet", Assembly.GetExecutingAssembly().Location, "nocow-memory", f).Trim().Split(' ');
                    Console.WriteLine($"| {size >> 20} MiB | {mem[0]} | {mem[1]} |");
                    File.Delete(f);
                }
            }
            finally
            {
                Program.Shell("umount", mnt);
                Directory.Delete(work, recursive: true);
            }

            return 0;
        }

        /// <summary>
        /// A directory of <see cref="TreeFiles"/> files of 64 KiB (a database's small files): ConvertTo-NoCow
        /// -Recurse against the same four commands per file in a shell loop (and chattr +C on the directory).
        /// </summary>
        private static void Tree(Runspace rs, string mnt, int runs)
        {
            Console.WriteLine();
            Console.WriteLine($"| tree | ConvertTo-NoCow -Recurse (incl. fsync) | cp + chattr + mv per file | same + sync | ratio to the loop + sync | ratio to the loop alone |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            var module = new List<double>();
            var anchor = new List<double>();
            var anchorSync = new List<double>();
            for (int run = 0; run < runs; run++)
            {
                string m = Path.Combine(mnt, "module-tree");
                string a = Path.Combine(mnt, "anchor-tree");
                foreach (string dir in new[] { m, a })
                {
                    Directory.CreateDirectory(dir);
                    for (int i = 0; i < TreeFiles; i++)
                    {
                        Write(Path.Combine(dir, $"f{i:D3}"), 64 << 10, dataEvery: 0, seed: i);
                    }
                }

                Program.Sh("sync");
                Alternate(run, () => Convert(rs, m, recurse: true), TreeAnchor, a, module, anchor, anchorSync);

                for (int i = 0; i < TreeFiles; i++)
                {
                    Check(Path.Combine(m, $"f{i:D3}"), Path.Combine(a, $"f{i:D3}"));
                }

                if (Directory.GetFileSystemEntries(m).Length != TreeFiles || Directory.GetFileSystemEntries(a).Length != TreeFiles)
                {
                    throw new InvalidOperationException("a tree holds more or fewer names than it was given");
                }

                Directory.Delete(m, recursive: true);
                Directory.Delete(a, recursive: true);
            }

            double mm = Median(module), am = Median(anchor), asm = Median(anchorSync);
            string name = $"{TreeFiles} files of 64 KiB";
            Console.WriteLine($"| {name} | {mm:F2} s | {am:F2} s | {asm:F2} s | {mm / asm:F2}× | {mm / am:F2}× |");
            Summary.Add($"ConvertTo-NoCow -Recurse vs cp + chattr + mv per file + sync ({name})", mm, asm);
            Console.WriteLine($"<!-- {name}: module {string.Join(' ', module.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))}; anchor {string.Join(' ', anchor.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))}; anchor+sync {string.Join(' ', anchorSync.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))} -->");
        }

        /// <summary>
        /// One timed run of each side, caches dropped before each, alternating which goes first so neither always
        /// meets a fresher filesystem: <paramref name="ours"/>, and the shell <paramref name="anchorScript"/> on
        /// <paramref name="anchorPath"/> without and with the sync after it.
        /// </summary>
        private static void Alternate(int run, Action ours, string anchorScript, string anchorPath, List<double> module, List<double> anchor, List<double> anchorSync)
        {
            for (int k = 0; k < 2; k++)
            {
                DropCaches();
                var sw = Stopwatch.StartNew();
                if ((k + run) % 2 == 0)
                {
                    ours();
                    module.Add(sw.Elapsed.TotalSeconds);
                }
                else
                {
                    Program.Sh("bash", "-c", anchorScript, "_", anchorPath);
                    double t = sw.Elapsed.TotalSeconds;
                    Program.Sh("sync");
                    anchor.Add(t);
                    anchorSync.Add(sw.Elapsed.TotalSeconds);
                }
            }
        }

        /// <summary>Child process: peak RSS growth and managed heap of one ConvertTo-NoCow.</summary>
        internal static int Memory(string path)
        {
            using Runspace rs = RunspaceFactory.CreateRunspace(Program.Iss.Value);
            rs.Open();
            Convert(rs, null);
            Console.WriteLine(Program.PeakMemory(() => Convert(rs, path)));
            return 0;
        }

        private static void Convert(Runspace rs, string? path, bool recurse = false)
        {
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            ps.AddScript(path is null ? "Get-Command ConvertTo-NoCow | Out-Null" : "param($f, $r) ConvertTo-NoCow -LiteralPath $f -Recurse:$r -Confirm:$false").AddArgument(path).AddArgument(recurse);
            ps.Invoke();
            if (ps.HadErrors)
            {
                throw new InvalidOperationException(string.Join("; ", ps.Streams.Error));
            }
        }

        /// <summary>Random data; with dataEvery = n, only one 10 MiB chunk in every n × 10 MiB (sparse), else all data.</summary>
        private static void Write(string path, long size, int dataEvery, int seed = 7)
        {
            byte[] chunk = new byte[Math.Min(1 << 20, size)];
            var rng = new Random(seed);
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
            for (long off = 0; off < size; off += chunk.Length)
            {
                long tenMiB = off / (10L << 20);
                if (dataEvery > 0 && tenMiB % dataEvery != 0)
                {
                    continue;
                }

                rng.NextBytes(chunk);
                fs.Position = off;
                fs.Write(chunk);
            }

            fs.SetLength(size);
        }

        private static void Check(string module, string anchor)
        {
            foreach (string p in new[] { module, anchor })
            {
                if (!Program.Sh("lsattr", p).Split(' ')[0].Contains('C', StringComparison.Ordinal))
                {
                    throw new InvalidOperationException(p + " is not NOCOW");
                }
            }

            if (Hash(module) != Hash(anchor))
            {
                throw new InvalidOperationException("the two results differ");
            }

            long bm = long.Parse(Program.Sh("stat", "-c", "%b", module).Trim(), CultureInfo.InvariantCulture);
            long ba = long.Parse(Program.Sh("stat", "-c", "%b", anchor).Trim(), CultureInfo.InvariantCulture);
            if (bm > ba)
            {
                throw new InvalidOperationException($"the module's result allocates more ({bm} blocks) than the anchor's ({ba})");
            }
        }

        private static string Hash(string path)
        {
            using FileStream fs = File.OpenRead(path);
            return System.Convert.ToHexString(SHA256.HashData(fs));
        }

        private static void DropCaches()
        {
            Program.Sh("sync");
            File.WriteAllText("/proc/sys/vm/drop_caches", "3");
        }

        private static double Median(List<double> xs) => Summary.Median(xs);
    }
}
