// Issue #20: a scheduled whole-tree run of Invoke-BtrfsDefrag against xfs_fsr -t (xfs, the same budget)
// and btrfs filesystem defragment -r -t 32M (btrfs, bytes written for the fragments removed). Run as root.
namespace Btrfs.Bench
{
    using System;
    using System.Collections.Generic;
    using System.Diagnostics;
    using System.Globalization;
    using System.IO;
    using System.Linq;
    using System.Management.Automation.Runspaces;
    using Btrfs.Tests.Infrastructure;
    using static FragmentationBench;

    internal static class ScheduledDefragBench
    {
        internal static int Run(int runs)
        {
            Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Program.Sh("xfs_fsr", "-V").Trim()}, {Program.Sh("btrfs", "--version").Trim()}; {runs} run(s), caches dropped before each side");
            if (Environment.GetEnvironmentVariable("BENCH_ONLY") != "btrfs")
            {
                Xfs(runs);
            }

            if (Environment.GetEnvironmentVariable("BENCH_ONLY") != "xfs")
            {
                Btrfs(runs);
            }
            return 0;
        }

        /// <summary>
        /// xfs: two identical filesystems holding eight files in 64 KiB pieces (16 to 128 MiB) and 200
        /// unfragmented 1 MiB files; each tool gets the same budget over the whole filesystem; extents
        /// removed (filefrag, all files) and bytes written (the device's stat) are compared.
        /// </summary>
        private static void Xfs(int runs)
        {
            const int Budget = 1;
            Console.WriteLine();
            Console.WriteLine($"| xfs, budget {Budget} s | extents before | extents after | extents removed | written to the device | wall time |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            var ours = new List<(long Before, long After, long Written, double Time)>();
            var theirs = new List<(long Before, long After, long Written, double Time)>();
            for (int run = 0; run < runs; run++)
            {
                SwapDefragBench.WithTwoIdenticalFileSystems("xfs", "1600M", Fill, (mine, other) =>
                {
                    using Runspace rs = Open();

                    // Both sides warmed on the same small fragmented file (ours: the code of a scheduled run
                    // compiled, as every comparison here warms what it times), left defragmented on both.
                    Invoke(rs, "param($d) Invoke-BtrfsDefrag -LiteralPath $d -Recurse -MaxDuration 00:00:30 -Confirm:$false | Out-Null", Path.Combine(mine, "warm"));
                    Program.Shell("xfs_fsr", Path.Combine(other, "warm", "w.img"));

                    // xfs_fsr checks its clock only between files, so it runs past -t: ours gets the time it really took.
                    theirs.Add(Side(other, () => Program.Shell("xfs_fsr", "-t", Budget.ToString(CultureInfo.InvariantCulture), other)));
                    TimeSpan used = TimeSpan.FromSeconds(Math.Ceiling(theirs[^1].Time * 10) / 10);
                    ours.Add(Side(mine, () => Invoke(rs, $"param($d, $t) Invoke-BtrfsDefrag -LiteralPath $d -Recurse -MaxDuration ([TimeSpan]::Parse($t)) -Confirm:$false | Out-Null", mine, used.ToString("c", CultureInfo.InvariantCulture))));
                });
            }

            Print("Invoke-BtrfsDefrag -Recurse -MaxDuration (xfs_fsr's real time)", ours);
            Print($"xfs_fsr -t {Budget}", theirs);
            Summary.Add($"Invoke-BtrfsDefrag -Recurse -MaxDuration vs xfs_fsr -t {Budget}, extents removed in the same time (xfs; ratio: xfs_fsr's per ours)", Median(ours.Select(o => (double)(o.Before - o.After)).ToList()), Median(theirs.Select(t => (double)(t.Before - t.After)).ToList()), unit: "extents", moreIsBetter: true);
        }

        /// <summary>
        /// btrfs: a fresh filesystem per side with eight files fragmented by random 4 KiB overwrites
        /// (2,000 each), four 128 MiB files each with six 4 KiB overwrites (a few fragments in much data),
        /// and 200 unfragmented 1 MiB files; each tool runs over the whole tree, without budget (ours with
        /// -MinimumFragments 32: the lightly fragmented files are not worth their bytes); extents removed
        /// and the bytes written to the device are compared.
        /// </summary>
        private static void Btrfs(int runs)
        {
            Console.WriteLine();
            Console.WriteLine("| btrfs, whole tree | extents before | extents after | extents removed | written to the device | wall time |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            var ours = new List<(long Before, long After, long Written, double Time)>();
            var theirs = new List<(long Before, long After, long Written, double Time)>();
            for (int run = 0; run < runs; run++)
            {
                WithFileSystem("btrfs", "3G", mnt =>
                {
                    string tree = BtrfsTree(mnt);
                    using Runspace rs = Open();
                    Invoke(rs, "param($f) Measure-Fragmentation -LiteralPath $f | Out-Null", Path.Combine(tree, "plain", "p000"));
                    ours.Add(Side(tree, () => Invoke(rs, "param($d) Invoke-BtrfsDefrag -LiteralPath $d -Recurse -Passes 1 -MinimumFragments 32 -Confirm:$false | Out-Null", tree)));
                });
                WithFileSystem("btrfs", "3G", mnt =>
                {
                    string tree = BtrfsTree(mnt);
                    theirs.Add(Side(tree, () => Program.Shell("btrfs", "filesystem", "defragment", "-r", "-t", "32M", tree)));
                });
            }

            Print("Invoke-BtrfsDefrag -Recurse -Passes 1 -MinimumFragments 32", ours);
            Print("btrfs filesystem defragment -r -t 32M", theirs);
            Summary.Add("Invoke-BtrfsDefrag -Recurse -MinimumFragments 32 vs btrfs filesystem defragment -r, bytes written per extent removed (btrfs)", Median(ours.Select(PerExtent).ToList()), Median(theirs.Select(PerExtent).ToList()), 0.5, unit: "bytes");
        }

        private static double PerExtent((long Before, long After, long Written, double Time) x) => x.Written / (double)Math.Max(1, x.Before - x.After);

        private static void Fill(string mnt)
        {
            var files = new List<(string, long)>();
            for (int i = 0; i < 8; i++)
            {
                files.Add((Path.Combine(mnt, $"vm{i}.img"), (16L + (16 * i)) << 20));
            }

            Directory.CreateDirectory(Path.Combine(mnt, "warm"));
            files.Add((Path.Combine(mnt, "warm", "w.img"), 2L << 20));
            SwapDefragBench.Fragmented(mnt, files.ToArray());
            Plain(mnt);
        }

        private static void Plain(string dir)
        {
            string plain = Directory.CreateDirectory(Path.Combine(dir, "plain")).FullName;
            var rng = new Random(20);
            byte[] data = new byte[1 << 20];
            for (int i = 0; i < 200; i++)
            {
                rng.NextBytes(data);
                using var f = new FileStream(Path.Combine(plain, $"p{i:D3}"), FileMode.CreateNew, FileAccess.Write);
                f.Write(data);
            }

            Program.Sh("sync");
        }

        private static string BtrfsTree(string mnt)
        {
            string tree = Directory.CreateDirectory(Path.Combine(mnt, "tree")).FullName;
            var rng = new Random(21);
            byte[] block = new byte[4096];
            for (int i = 0; i < 8; i++)
            {
                long size = (16L + (16 * i)) << 20;
                string path = Path.Combine(tree, $"vm{i}.img");
                byte[] data = new byte[1 << 20];
                using var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
                for (long done = 0; done < size; done += data.Length)
                {
                    rng.NextBytes(data);
                    f.Write(data);
                }

                f.Flush(flushToDisk: true);
                for (int k = 0; k < 2000; k++)
                {
                    rng.NextBytes(block);
                    f.Position = rng.NextInt64(size / 4096) * 4096;
                    f.Write(block);
                    if (k % 64 == 63)
                    {
                        f.Flush(flushToDisk: true);
                    }
                }

                f.Flush(flushToDisk: true);
            }

            for (int i = 0; i < 4; i++)
            {
                string path = Path.Combine(tree, $"big{i}.img");
                byte[] data = new byte[1 << 20];
                using var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
                for (long done = 0; done < 128L << 20; done += data.Length)
                {
                    rng.NextBytes(data);
                    f.Write(data);
                }

                f.Flush(flushToDisk: true);
                for (int k = 0; k < 6; k++)
                {
                    rng.NextBytes(block);
                    f.Position = rng.NextInt64(32768) * 4096;
                    f.Write(block);
                    f.Flush(flushToDisk: true);
                }
            }

            Plain(tree);
            return tree;
        }

        /// <summary>Extents of every file below <paramref name="dir"/> (filefrag), before and after; bytes written to the device (synced); time.</summary>
        private static (long Before, long After, long Written, double Time) Side(string dir, Action run)
        {
            string device = Path.GetFileName(Program.Sh("findmnt", "-n", "-o", "SOURCE", "--target", dir).Trim());
            long before = AllExtents(dir);
            Program.Sh("sync");
            DropCaches();
            long w0 = BlockDeviceCounters.BytesWritten(device);
            var sw = Stopwatch.StartNew();
            run();
            Program.Sh("sync");
            double time = sw.Elapsed.TotalSeconds;
            long written = BlockDeviceCounters.BytesWritten(device) - w0;
            return (before, AllExtents(dir), written, time);
        }

        private static long AllExtents(string dir) =>
            Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Sum(Extents);

        private static void Print(string tool, List<(long Before, long After, long Written, double Time)> xs)
        {
            var m = xs.OrderBy(x => x.Before - x.After).ToList()[xs.Count / 2];
            Console.WriteLine($"| {tool} | {m.Before:N0} | {m.After:N0} | {m.Before - m.After:N0} | {m.Written / 1048576.0:F1} MiB | {m.Time:F2} s |");
            Console.WriteLine($"<!-- {tool}: extents removed {string.Join(' ', xs.Select(x => x.Before - x.After))}; seconds {string.Join(' ', xs.Select(x => x.Time.ToString("F2", CultureInfo.InvariantCulture)))} -->");
        }
    }
}
