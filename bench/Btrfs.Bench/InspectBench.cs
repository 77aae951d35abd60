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
    using System.Text;
    using System.Text.RegularExpressions;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using static FragmentationBench;

    /// <summary>Issue #8: Measure-BtrfsUsage vs compsize, Get-BtrfsExtentOwner vs btrfs inspect-internal logical-resolve.</summary>
    internal static class InspectBench
    {
        /// <summary>
        /// 10,000 files in four directories whose compression property is none, zstd, zlib and lzo
        /// (text of 4–64 KiB each, so it compresses), plus reflink copies of 500 of them.
        /// </summary>
        internal static int Usage(int runs)
        {
            return WithBtrfs("8G", mnt =>
            {
                Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, compsize 1.5 (Debian btrfs-compsize), {runs} runs, warm cache");
                string tree = Path.Combine(mnt, "tree");
                int files = MakeMixedTree(tree, 10_000);
                Program.Sh("btrfs", "filesystem", "sync", mnt);

                // The figures must be compsize's before any timing means anything.
                using Runspace rs = Open();
                string summaryScript = "param($d) Measure-BtrfsUsage -LiteralPath $d -Recurse -Summary";
                string ours = Summary(rs, tree);
                string theirs = CompsizeTotals(tree);
                if (ours != theirs)
                {
                    throw new InvalidOperationException($"Measure-BtrfsUsage says {ours}, compsize says {theirs}");
                }

                Console.WriteLine($"Same figures: {ours}");
                var module = new List<double>();
                var perFile = new List<double>();
                var anchor = new List<double>();
                for (int run = 0; run < runs; run++)
                {
                    bool compsizeFirst = run % 2 == 1;
                    if (compsizeFirst)
                    {
                        anchor.Add(Time(() => Program.Sh("compsize", "-b", tree)));
                    }

                    module.Add(Time(() => Invoke(rs, summaryScript + " | Out-Null", tree)));
                    perFile.Add(Time(() => Invoke(rs, "param($d) Measure-BtrfsUsage -LiteralPath $d -Recurse | Out-Null", tree)));
                    if (!compsizeFirst)
                    {
                        anchor.Add(Time(() => Program.Sh("compsize", "-b", tree)));
                    }
                }

                Console.WriteLine("| files | Measure-BtrfsUsage -Recurse -Summary | per-file objects (-Recurse \\| Out-Null) | compsize -b | ratio (-Summary / compsize) |");
                Console.WriteLine("|---:|---:|---:|---:|---:|");
                Console.WriteLine($"| {files:N0} | {Median(module):F3} s | {Median(perFile):F3} s | {Median(anchor):F3} s | {Median(module) / Median(anchor):F2}× |");
                Btrfs.Bench.Summary.Add("Measure-BtrfsUsage -Recurse -Summary vs compsize -b", Median(module), Median(anchor));
                Console.WriteLine($"<!-- summary {Join3(module)}; per-file {Join3(perFile)}; compsize {Join3(anchor)} -->");

                Console.WriteLine();
                Console.WriteLine("| files | distinct extents | peak RSS growth (-Summary) | peak managed heap |");
                Console.WriteLine("|---:|---:|---:|---:|");
                foreach (int n in new[] { 2_000, 10_000, 40_000 })
                {
                    string t = Path.Combine(mnt, "mem-" + n);
                    int made = MakeMixedTree(t, n);
                    Program.Sh("btrfs", "filesystem", "sync", mnt);
                    string[] mem = Program.Sh("dotnet", Assembly.GetExecutingAssembly().Location, "usage-memory", t).Trim().Split(' ');
                    Console.WriteLine($"| {made:N0} | {mem[2]} | {mem[0]} | {mem[1]} |");
                }
            });
        }

        /// <summary>Diagnostic: where Measure-BtrfsUsage's time goes on the 10,000-file tree.</summary>
        internal static int UsageVariants()
        {
            return WithBtrfs("8G", mnt =>
            {
                string tree = Path.Combine(mnt, "tree");
                MakeMixedTree(tree, 10_000);
                Program.Sh("btrfs", "filesystem", "sync", mnt);
                using Runspace rs = Open();
                var steps = new (string Name, Action Run)[]
                {
                    ("compsize -b", () => Program.Sh("compsize", "-b", tree)),
                    ("TreeWalker.Walk only", () => TreeWalker.Walk(tree).Count()),
                    ("walk + open/close", () =>
                    {
                        foreach (var e in TreeWalker.Walk(tree).Where(e => e.Kind == WalkEntryKind.File))
                        {
                            using var f = OpenFile.OpenRead(e.Path);
                        }
                    }),
                    ("walk + open + items (one thread)", () =>
                    {
                        var t = new Btrfs.Core.BtrfsUsageTotals();
                        foreach (var e in TreeWalker.Walk(tree).Where(e => e.Kind == WalkEntryKind.File))
                        {
                            using var f = OpenFile.OpenRead(e.Path);
                            t.Add(f);
                        }
                    }),
                    ("cmdlet -Summary", () => Invoke(rs, "param($d) Measure-BtrfsUsage -LiteralPath $d -Recurse -Summary | Out-Null", tree)),
                };
                foreach (var (name, run) in steps)
                {
                    run();
                    var times = new List<double>();
                    for (int i = 0; i < 5; i++)
                    {
                        times.Add(Time(run));
                    }

                    Console.WriteLine($"{Median(times) * 1000,8:F1} ms  {name}");
                }
            });
        }

        /// <summary>Child process: peak RSS growth and managed heap of one Measure-BtrfsUsage -Recurse -Summary.</summary>
        internal static int UsageMemory(string tree)
        {
            using Runspace rs = Open();
            Invoke(rs, "param($d) Measure-BtrfsUsage -LiteralPath $d | Out-Null", Directory.GetFiles(tree, "*", SearchOption.AllDirectories)[0]);
            long extents = 0;
            string memory = Program.PeakMemory(() =>
            {
                using var ps = PowerShell.Create();
                ps.Runspace = rs;
                var result = ps.AddScript("param($d) (Measure-BtrfsUsage -LiteralPath $d -Recurse -Summary).Extents").AddArgument(tree).Invoke();
                extents = Convert.ToInt64(result[0].BaseObject, CultureInfo.InvariantCulture);
            });
            Console.WriteLine($"{memory} {extents:N0}");
            return 0;
        }

        /// <summary>
        /// 1,000 shared extents: a file of 1,000 extents (4 KiB every 8 KiB) with two reflink copies, all
        /// at the top level so logical-resolve can name them (btrfs-progs#400 keeps it from naming files
        /// in other subvolumes). Owners of every extent: the cmdlet on the file's exact items, and one
        /// logical-resolve per extent address.
        /// </summary>
        internal static int Owners(int runs)
        {
            return WithBtrfs("2G", mnt =>
            {
                Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Program.Sh("btrfs", "--version").Trim()}, {runs} runs, warm cache");
                string file = Path.Combine(mnt, "shared.img");
                byte[] block = new byte[4096];
                new Random(8).NextBytes(block);
                using (var fs = new FileStream(file, FileMode.CreateNew, FileAccess.Write))
                {
                    for (int i = 0; i < 1000; i++)
                    {
                        fs.Position = i * 8192L;
                        block[0] = (byte)i;
                        block[1] = (byte)(i >> 8);
                        fs.Write(block);
                    }

                    fs.Flush(flushToDisk: true);
                }

                Program.Sh("cp", "--reflink=always", file, file + ".a");
                Program.Sh("cp", "--reflink=always", file, file + ".b");
                Program.Sh("btrfs", "filesystem", "sync", mnt);

                using Runspace rs = Open();
                List<long> addresses = Addresses(rs, file);
                if (addresses.Count != 1000)
                {
                    throw new InvalidOperationException($"expected 1,000 extents, got {addresses.Count}");
                }

                long ours = Count(rs, "param($f) @(Get-BtrfsExtent -LiteralPath $f -Exact | Get-BtrfsExtentOwner -Detailed | Where-Object Path).Count", file);
                long theirs = addresses.Sum(a => (long)ResolvePaths(a, mnt));
                if (ours != theirs || ours != 3000)
                {
                    throw new InvalidOperationException($"Get-BtrfsExtentOwner named {ours} owners, logical-resolve {theirs} (3,000 expected)");
                }

                Console.WriteLine($"Same owners: {ours:N0} paths for 1,000 extents");
                var module = new List<double>();
                var anchor = new List<double>();
                for (int run = 0; run < runs; run++)
                {
                    if (run % 2 == 1)
                    {
                        anchor.Add(Time(() => addresses.ForEach(a => ResolvePaths(a, mnt))));
                    }

                    module.Add(Time(() => Invoke(rs, "param($f) Get-BtrfsExtent -LiteralPath $f -Exact | Get-BtrfsExtentOwner -Detailed | Out-Null", file)));
                    if (run % 2 == 0)
                    {
                        anchor.Add(Time(() => addresses.ForEach(a => ResolvePaths(a, mnt))));
                    }
                }

                Console.WriteLine("| extents | owners named | Get-BtrfsExtent -Exact \\| Get-BtrfsExtentOwner | logical-resolve -o, once per extent | ratio |");
                Console.WriteLine("|---:|---:|---:|---:|---:|");
                Console.WriteLine($"| 1,000 | {ours:N0} | {Median(module):F3} s | {Median(anchor):F3} s | {Median(module) / Median(anchor):F3}× |");
                Btrfs.Bench.Summary.Add("Get-BtrfsExtentOwner vs btrfs inspect-internal logical-resolve", Median(module), Median(anchor));
                Console.WriteLine($"<!-- cmdlet {Join3(module)}; logical-resolve {Join3(anchor)} -->");

                // One extent referenced 3,000 times within one file (a deduplicated image's zero block): its 3,000 pieces
                // piped in, each once in the file's grouping; the extent is looked up once (it was looked up for every
                // piece: 13.9 s here, a hostile test). The anchor resolves the one address once.
                string blk = Path.Combine(mnt, "blk");
                string self = Path.Combine(mnt, "self.img");
                byte[] one = new byte[4096];
                new Random(9).NextBytes(one);
                File.WriteAllBytes(blk, one);
                Program.Sh("sync");
                var reflinks = new List<string> { "-f" };
                for (int i = 0; i < 3000; i++)
                {
                    reflinks.Add("-c");
                    reflinks.Add($"reflink {blk} 0 {i * 8192L} 4096");
                }

                reflinks.Add(self);
                Program.Sh("xfs_io", reflinks.ToArray());
                Program.Sh("btrfs", "filesystem", "sync", mnt);
                long selfRefs = Count(rs, "param($f) (Get-BtrfsExtent -LiteralPath $f | Get-BtrfsExtentOwner | Where-Object Path -eq $f).References", self);
                long address = Addresses(rs, self)[0];
                int resolved = ResolvePaths(address, mnt);
                if (selfRefs != 3000 || resolved < 1)
                {
                    throw new InvalidOperationException($"Get-BtrfsExtentOwner counted {selfRefs} references of the file to its extent (3,000 expected); logical-resolve named {resolved} paths");
                }

                var piped = new List<double>();
                var byPath = new List<double>();
                var resolve = new List<double>();
                for (int run = 0; run < runs; run++)
                {
                    piped.Add(Time(() => Invoke(rs, "param($f) Get-BtrfsExtent -LiteralPath $f | Get-BtrfsExtentOwner | Out-Null", self)));
                    byPath.Add(Time(() => Invoke(rs, "param($f) Get-BtrfsExtentOwner -LiteralPath $f | Out-Null", self)));
                    resolve.Add(Time(() => ResolvePaths(address, mnt)));
                }

                Console.WriteLine();
                Console.WriteLine("| one extent, references in one file | Get-BtrfsExtentOwner FILE | Get-BtrfsExtent \\| Get-BtrfsExtentOwner (3,000 pieces piped) | logical-resolve -o, once | ratio (FILE) |");
                Console.WriteLine("|---:|---:|---:|---:|---:|");
                Console.WriteLine($"| 3,000 | {Median(byPath):F3} s | {Median(piped):F3} s | {Median(resolve):F3} s | {Median(byPath) / Median(resolve):F3}× |");
                Btrfs.Bench.Summary.Add("Get-BtrfsExtentOwner FILE, one extent 3,000 times in it, vs logical-resolve", Median(byPath), Median(resolve));
                Console.WriteLine($"<!-- by path {Join3(byPath)}; piped {Join3(piped)}; logical-resolve {Join3(resolve)} -->");
            });
        }

        private static List<long> Addresses(Runspace rs, string file)
        {
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            return ps.AddScript("param($f) Get-BtrfsExtent -LiteralPath $f -Exact | ForEach-Object DiskAddress").AddArgument(file).Invoke()
                .Select(o => Convert.ToInt64(o.BaseObject, CultureInfo.InvariantCulture)).ToList();
        }

        private static int ResolvePaths(long address, string mnt) =>
            Program.Sh("btrfs", "inspect-internal", "logical-resolve", "-o", address.ToString(CultureInfo.InvariantCulture), mnt)
                .Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.StartsWith('/'));

        private static long Count(Runspace rs, string script, string arg)
        {
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            var r = ps.AddScript(script).AddArgument(arg).Invoke();
            if (ps.HadErrors)
            {
                throw new InvalidOperationException(string.Join("; ", ps.Streams.Error));
            }

            return Convert.ToInt64(r[0].BaseObject, CultureInfo.InvariantCulture);
        }

        private static string Summary(Runspace rs, string tree)
        {
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            var r = ps.AddScript("param($d) $s = Measure-BtrfsUsage -LiteralPath $d -Recurse -Summary; '{0} files, {1} extents ({2} refs), {3} inline; disk {4}, uncompressed {5}, referenced {6}' -f $s.Files, $s.Extents, $s.References, $s.InlineItems, $s.DiskBytes, $s.UncompressedBytes, $s.ReferencedBytes").AddArgument(tree).Invoke();
            if (ps.HadErrors)
            {
                throw new InvalidOperationException(string.Join("; ", ps.Streams.Error));
            }

            return r[0].ToString();
        }

        private static string CompsizeTotals(string tree)
        {
            string text = Program.Sh("compsize", "-b", tree);
            Match p = Regex.Match(text, @"Processed (\d+) files?, (\d+) regular extents \((\d+) refs\), (\d+) inline");
            Match t = Regex.Match(text, @"^TOTAL\s+\d+%\s+(\d+)\s+(\d+)\s+(\d+)", RegexOptions.Multiline);
            return $"{p.Groups[1].Value} files, {p.Groups[2].Value} extents ({p.Groups[3].Value} refs), {p.Groups[4].Value} inline; disk {t.Groups[1].Value}, uncompressed {t.Groups[2].Value}, referenced {t.Groups[3].Value}";
        }

        private static int MakeMixedTree(string root, int n)
        {
            string[] algorithms = { "none", "zstd", "zlib", "lzo" };
            var rng = new Random(3);
            var text = new StringBuilder();
            for (int i = 0; text.Length < 64 * 1024; i++)
            {
                text.Append("2026-11-23 12:00:").Append(i % 60).Append(" host").Append(i % 7).Append(" service[").Append(i).Append("]: request served in ").Append(i % 97).Append(" ms\n");
            }

            byte[] data = Encoding.ASCII.GetBytes(text.ToString());
            foreach (string a in algorithms)
            {
                Directory.CreateDirectory(Path.Combine(root, a));
                if (a != "none")
                {
                    Program.Sh("btrfs", "property", "set", Path.Combine(root, a), "compression", a);
                }
            }

            for (int i = 0; i < n; i++)
            {
                string dir = Path.Combine(root, algorithms[i % 4], "d" + (i / 4 % 25).ToString(CultureInfo.InvariantCulture));
                Directory.CreateDirectory(dir);
                using var f = new FileStream(Path.Combine(dir, $"f{i}.log"), FileMode.CreateNew, FileAccess.Write);
                f.Write(data, rng.Next(1024), 4096 * (1 + rng.Next(15)));
            }

            string clones = Path.Combine(root, "clones");
            Directory.CreateDirectory(clones);
            Program.Sh("sync");
            string[] some = Directory.GetFiles(Path.Combine(root, "zstd"), "*", SearchOption.AllDirectories).Take(n / 20).ToArray();
            foreach (string s in some)
            {
                Program.Sh("cp", "--reflink=always", s, Path.Combine(clones, Path.GetFileName(s)));
            }

            return n + some.Length;
        }

        private static double Time(Action a) => Btrfs.Bench.Summary.Time(a);

        private static string Join3(List<double> xs) => Btrfs.Bench.Summary.Join3(xs);
    }
}
