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
    using System.Text.RegularExpressions;
    using Btrfs.Core;
    using static FragmentationBench;

    /// <summary>
    /// Issue #18: Measure-BtrfsSubvolume for every subvolume against the tools that answer the same
    /// question: quotas (enable + rescan -w + qgroup show), `btrfs check --qgroup-report --force`, and
    /// `btrfs filesystem du -s` over every snapshot; the figures checked against the qgroups first.
    /// </summary>
    internal static class SubvolumeBench
    {
        internal static int Run(int runs)
        {
            return WithBtrfs("4G", mnt =>
            {
                Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Program.Sh("btrfs", "--version").Trim()}, {runs} runs, warm cache");
                (int files, List<string> subvolumes) = MakeSnapshots(mnt, 10_000, 20);
                string device = Program.Sh("findmnt", "-n", "-o", "SOURCE", mnt).Trim();
                using Runspace rs = Open();
                const string Ours = "param($m) Get-BtrfsSubvolume -LiteralPath $m -Recurse | Measure-BtrfsSubvolume";

                // The same figures as the qgroups, every subvolume, before any timing means anything.
                Dictionary<ulong, (ulong Rfer, ulong Excl)> q = QuotaFigures(mnt);
                int compared = 0;
                foreach (PSObject o in InvokeObjects(rs, Ours, mnt))
                {
                    var u = (BtrfsSubvolumeUsage)o.BaseObject;
                    if (!q.TryGetValue(u.Id, out var figures) || figures.Rfer != u.ReferencedBytes || figures.Excl != u.ExclusiveBytes)
                    {
                        throw new InvalidOperationException($"subvolume {u.Id}: measured {u.ReferencedBytes}/{u.ExclusiveBytes}, qgroups {figures.Rfer}/{figures.Excl}");
                    }

                    compared++;
                }

                Console.WriteLine($"Same figures as the qgroups for all {compared} subvolumes ({files:N0} files in the source, {subvolumes.Count - 1} snapshots)");
                var ours = new List<double>();
                var quota = new List<double>();
                var check = new List<double>();
                var du = new List<double>();
                for (int run = 0; run < runs; run++)
                {
                    bool anchorsFirst = run % 2 == 1;
                    if (!anchorsFirst)
                    {
                        ours.Add(Time(() => Invoke(rs, Ours + " | Out-Null", mnt)));
                    }

                    quota.Add(Time(() => QuotaFigures(mnt)));
                    check.Add(CheckReport(mnt, device, compared));
                    if (run == 0)
                    {
                        du.Add(Time(() => Program.Sh("btrfs", new[] { "filesystem", "du", "-s" }.Concat(subvolumes).ToArray())));
                    }

                    if (anchorsFirst)
                    {
                        ours.Add(Time(() => Invoke(rs, Ours + " | Out-Null", mnt)));
                    }
                }

                Console.WriteLine("| subvolumes | Measure-BtrfsSubvolume (all) | quota enable + rescan -w + qgroup show | btrfs check --qgroup-report | btrfs fi du -s (every snapshot, 1 run) | ratio to rescan | ratio to check |");
                Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
                Console.WriteLine($"| {compared} | {Median(ours):F3} s | {Median(quota):F3} s | {Median(check):F3} s | {Median(du):F2} s | {Median(ours) / Median(quota):F2}× | {Median(ours) / Median(check):F2}× |");
                Console.WriteLine($"<!-- ours {Join3(ours)}; quota {Join3(quota)}; check {Join3(check)}; du {Join3(du)} -->");
                Summary.Add("Measure-BtrfsSubvolume (all) vs quota enable + rescan -w + show", Median(ours), Median(quota));
                Summary.Add("Measure-BtrfsSubvolume (all) vs btrfs check --qgroup-report", Median(ours), Median(check));

                // Memory against the number of distinct extents: a second, larger source in the same filesystem.
                Console.WriteLine();
                Console.WriteLine("| files in the source | distinct data extents | tree blocks | peak RSS growth | peak managed heap |");
                Console.WriteLine("|---:|---:|---:|---:|---:|");
                Console.WriteLine($"| {files:N0} | {Memory(mnt)} |");
                MakeSnapshots(Path.Combine(mnt, "more"), 40_000, 5);
                Console.WriteLine($"| {files + 40_000:N0} | {Memory(mnt)} |");
            });
        }

        /// <summary>Child process: the cmdlet over every subvolume; prints "extents blocks RSS heap".</summary>
        internal static int MemoryChild(string mnt)
        {
            using Runspace rs = Open();
            Invoke(rs, "param($m) Measure-BtrfsSubvolume -LiteralPath $m | Out-Null", mnt); // warm the engine
            string peak = Program.PeakMemory(() => Invoke(rs, "param($m) Get-BtrfsSubvolume -LiteralPath $m -Recurse | Measure-BtrfsSubvolume | Out-Null", mnt));
            Console.WriteLine(peak);
            return 0;
        }

        private static string Memory(string mnt)
        {
            string[] mem = Program.Sh("dotnet", Assembly.GetExecutingAssembly().Location, "subvolumes-memory", mnt).Trim().Split(' ');
            (long extents, long blocks) = CountFromDump(mnt);
            return $"{extents:N0} | {blocks:N0} | {mem[0]} | {mem[1]}";
        }

        /// <summary>Distinct data extents and tree blocks of the filesystem (extent tree items, from dump-tree).</summary>
        private static (long Extents, long Blocks) CountFromDump(string mnt)
        {
            Program.Sh("btrfs", "filesystem", "sync", mnt);
            string device = Program.Sh("findmnt", "-n", "-o", "SOURCE", mnt).Trim();
            long extents = 0, blocks = 0;
            var psi = new ProcessStartInfo("btrfs", new[] { "inspect-internal", "dump-tree", "-t", "extent", device }) { RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            while (p.StandardOutput.ReadLine() is string line)
            {
                if (line.Contains(" EXTENT_ITEM ", StringComparison.Ordinal) && line.Contains("key (", StringComparison.Ordinal))
                {
                    extents++;
                }
                else if (line.Contains(" METADATA_ITEM ", StringComparison.Ordinal) && line.Contains("key (", StringComparison.Ordinal))
                {
                    blocks++;
                }
            }

            p.WaitForExit();
            return (extents, blocks);
        }

        /// <summary>
        /// A subvolume "sv" under <paramref name="root"/> with <paramref name="files"/> files of 4–32 KiB in
        /// 100 directories, then <paramref name="snapshots"/> read-only snapshots, between each: 100 files
        /// overwritten in part, 50 new, 20 deleted. Returns the file count and every subvolume's path.
        /// </summary>
        private static (int Files, List<string> Subvolumes) MakeSnapshots(string root, int files, int snapshots)
        {
            Directory.CreateDirectory(root);
            string sv = Path.Combine(root, "sv");
            Program.Sh("btrfs", "subvolume", "create", sv);
            var rng = new Random(18);
            byte[] data = new byte[32 * 1024];
            for (int i = 0; i < files; i++)
            {
                string dir = Path.Combine(sv, $"d{i % 100:D3}");
                Directory.CreateDirectory(dir);
                rng.NextBytes(data);
                using var f = new FileStream(Path.Combine(dir, $"f{i:D6}"), FileMode.CreateNew);
                f.Write(data, 0, rng.Next(1, 9) * 4096);
            }

            Program.Sh("btrfs", "filesystem", "sync", root);
            var subvolumes = new List<string> { sv };
            string snaps = Directory.CreateDirectory(Path.Combine(root, "snaps")).FullName;
            for (int s = 1; s <= snapshots; s++)
            {
                string snap = Path.Combine(snaps, $"s{s:D2}");
                Program.Sh("btrfs", "subvolume", "snapshot", "-r", sv, snap);
                subvolumes.Add(snap);
                for (int k = 0; k < 100; k++)
                {
                    int i = rng.Next(files);
                    string file = Path.Combine(sv, $"d{i % 100:D3}", $"f{i:D6}");
                    if (File.Exists(file))
                    {
                        rng.NextBytes(data);
                        using var f = new FileStream(file, FileMode.Open, FileAccess.Write);
                        f.Write(data, 0, 4096);
                    }
                }

                for (int k = 0; k < 50; k++)
                {
                    rng.NextBytes(data);
                    using var f = new FileStream(Path.Combine(sv, $"d{k:D3}", $"n{s:D2}-{k:D2}"), FileMode.CreateNew);
                    f.Write(data, 0, 16384);
                }

                for (int k = 0; k < 20; k++)
                {
                    int i = rng.Next(files);
                    File.Delete(Path.Combine(sv, $"d{i % 100:D3}", $"f{i:D6}"));
                }

                Program.Sh("btrfs", "filesystem", "sync", root);
            }

            return (files, subvolumes);
        }

        /// <summary>
        /// The time of `btrfs check --qgroup-report --force` (it computes the qgroups listed in the quota
        /// tree from the disk, so quotas are enabled, untimed, first and disabled after); its report must
        /// name every subvolume, or it measured nothing.
        /// </summary>
        private static double CheckReport(string mnt, string device, int subvolumes)
        {
            Program.Sh("btrfs", "quota", "enable", mnt);
            Program.Sh("btrfs", "quota", "rescan", "-w", mnt);
            Program.Sh("btrfs", "filesystem", "sync", mnt);
            string report = string.Empty;
            double t = Time(() => report = Program.Sh("btrfs", "check", "--qgroup-report", "--force", device));
            Program.Sh("btrfs", "quota", "disable", mnt);
            int counted = Regex.Matches(report, @"^Counts for qgroup id: 0/", RegexOptions.Multiline).Count;
            if (counted < subvolumes)
            {
                throw new InvalidOperationException($"btrfs check --qgroup-report counted {counted} of {subvolumes} subvolumes");
            }

            return t;
        }

        /// <summary>quota enable, rescan -w, qgroup show --raw, quota disable: subvolume id to (rfer, excl).</summary>
        private static Dictionary<ulong, (ulong Rfer, ulong Excl)> QuotaFigures(string mnt)
        {
            Program.Sh("btrfs", "quota", "enable", mnt);
            Program.Sh("btrfs", "quota", "rescan", "-w", mnt);
            string shown = Program.Sh("btrfs", "qgroup", "show", "--raw", mnt);
            Program.Sh("btrfs", "quota", "disable", mnt);
            var figures = new Dictionary<ulong, (ulong, ulong)>();
            foreach (Match m in Regex.Matches(shown, @"^0/(\d+)\s+(\d+)\s+(\d+)", RegexOptions.Multiline))
            {
                figures[ulong.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)] = (ulong.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), ulong.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture));
            }

            return figures;
        }

        private static List<PSObject> InvokeObjects(Runspace rs, string script, string arg)
        {
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            var result = ps.AddScript(script).AddArgument(arg).Invoke();
            if (ps.HadErrors)
            {
                throw new InvalidOperationException(string.Join("; ", ps.Streams.Error));
            }

            return result.ToList();
        }

        private static double Time(Action a) => Summary.Time(a);

        private static double Time<T>(Func<T> f) => Summary.Time(() => { _ = f(); });

        private static string Join3(List<double> xs) => Summary.Join3(xs);
    }
}
