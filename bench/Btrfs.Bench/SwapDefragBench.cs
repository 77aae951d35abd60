// Invoke-BtrfsDefrag on xfs and ext4 against xfs_fsr and e4defrag (issue #9), one run each. Run as root:
//   dotnet run -c Release --project bench/Btrfs.Bench -- swapdefrag
namespace Btrfs.Bench
{
    using System;
    using System.Collections.Generic;
    using System.Diagnostics;
    using System.Globalization;
    using System.IO;
    using System.Linq;
    using System.Management.Automation.Runspaces;
    using static FragmentationBench;

    internal static class SwapDefragBench
    {
        private const int Chunk = 64 * 1024;
        private const long FileSize = 256L << 20;

        internal static int Run(int runs)
        {
            Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Program.Sh("xfs_fsr", "-V").Trim()}, e4defrag (e2fsprogs {Program.Sh("dpkg-query", "-W", "-f", "${Version}", "e2fsprogs").Trim()}); caches dropped before each timed command; {runs} runs (medians), alternating which tool goes first");

            // One file of 256 MiB in 64 KiB pieces.
            Compare(
                runs,
                "filesystem",
                "Invoke-BtrfsDefrag + sync",
                mnt => Fragmented(mnt, Path.Combine(mnt, "vm.img")),
                mnt => new[] { Path.Combine(mnt, "vm.img") },
                (anchor, mnt) => anchor == "xfs_fsr" ? new[] { "-v", Path.Combine(mnt, "vm.img") } : new[] { Path.Combine(mnt, "vm.img") },
                "param($m) Invoke-BtrfsDefrag -LiteralPath ($m + '/vm.img') | Out-Null",
                (anchor, before, kind) => $"Invoke-BtrfsDefrag vs {anchor}, 256 MiB, {before:N0} extents ({kind})",
                string.Empty);

            // Many small fragmented files: what each file costs besides its data (opening, measuring, the copy's
            // buffers, the exchange) against the anchor over the same files (xfs_fsr: the filesystem, which holds
            // only them; e4defrag: the directory).
            string[] Many(string mnt) => Enumerable.Range(0, ManyFiles).Select(i => Path.Combine(mnt, "many", $"f{i:D2}.img")).ToArray();
            Console.WriteLine();
            Compare(
                runs,
                $"{ManyFiles} files of 4 MiB",
                "Invoke-BtrfsDefrag -Recurse + sync",
                mnt =>
                {
                    Directory.CreateDirectory(Path.Combine(mnt, "many"));
                    Fragmented(mnt, Many(mnt).Select(f => (f, 4L << 20)).ToArray());
                },
                Many,
                (anchor, mnt) => anchor == "xfs_fsr" ? new[] { mnt } : new[] { Path.Combine(mnt, "many") },
                "param($m) Invoke-BtrfsDefrag -LiteralPath ($m + '/many') -Recurse -Confirm:$false | Out-Null",
                (anchor, before, kind) => $"Invoke-BtrfsDefrag -Recurse vs {anchor}, {ManyFiles} files of 4 MiB, {before:N0} extents ({kind})",
                ", many");

            // A file just written or read (a VM's image in use): its pages are in the page cache when the tool starts.
            Console.WriteLine();
            Compare(
                runs,
                "64 MiB, in the page cache",
                "Invoke-BtrfsDefrag + sync",
                mnt => Fragmented(mnt, new[] { (Path.Combine(mnt, "vm.img"), 64L << 20) }),
                mnt => new[] { Path.Combine(mnt, "vm.img") },
                (anchor, mnt) => anchor == "xfs_fsr" ? new[] { "-v", Path.Combine(mnt, "vm.img") } : new[] { Path.Combine(mnt, "vm.img") },
                "param($m) Invoke-BtrfsDefrag -LiteralPath ($m + '/vm.img') | Out-Null",
                (anchor, before, kind) => $"Invoke-BtrfsDefrag vs {anchor}, 64 MiB in the page cache, {before:N0} extents ({kind})",
                ", cached",
                cached: true);
            return 0;
        }

        /// <summary>Files of the many-files comparison, 4 MiB each in 64 KiB pieces.</summary>
        private const int ManyFiles = 40;

        /// <summary>
        /// One comparison on xfs (xfs_fsr) and ext4 (e4defrag): two identical filesystems filled by
        /// <paramref name="fill"/>, each tool's command timed after the caches are dropped (alternating which
        /// goes first; with <paramref name="cached"/> the files are read into the page cache then), the <paramref name="files"/> compared byte for byte afterwards and their extents counted;
        /// one table row per filesystem and one summary line.
        /// </summary>
        private static void Compare(int runs, string what, string oursHeader, Action<string> fill, Func<string, string[]> files, Func<string, string, string[]> anchorArgs, string oursScript, Func<string, long, string, string> summary, string commentTag, bool cached = false)
        {
            Console.WriteLine($"| {what} | extents before (each copy) | {oursHeader} | extents after | anchor + sync | extents after | time ratio |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
            foreach ((string kind, string anchor) in new[] { ("xfs", "xfs_fsr"), ("ext4", "e4defrag") })
            {
                var ours = new List<double>();
                var theirs = new List<double>();
                var oursAfter = new List<long>();
                var theirsAfter = new List<long>();
                long before = 0;
                for (int run = 0; run < runs; run++)
                {
                    WithTwoIdenticalFileSystems(kind, "1600M", fill, (mine, other) =>
                    {
                        before = files(mine).Sum(Extents);
                        using Runspace rs = Open();
                        Invoke(rs, "param($f) Measure-Fragmentation -LiteralPath $f | Out-Null", files(mine)[0]); // warm the engine and the module
                        for (int k = 0; k < 2; k++)
                        {
                            DropCaches();
                            if (cached)
                            {
                                foreach (string f in files((k + run) % 2 == 0 ? other : mine))
                                {
                                    using var read = File.OpenRead(f);
                                    read.CopyTo(Stream.Null);
                                }
                            }

                            var sw = Stopwatch.StartNew();
                            if ((k + run) % 2 == 0)
                            {
                                Program.Shell(anchor, anchorArgs(anchor, other));
                                Program.Sh("sync");
                                theirs.Add(sw.Elapsed.TotalSeconds);
                            }
                            else
                            {
                                Invoke(rs, oursScript, mine);
                                Program.Sh("sync");
                                ours.Add(sw.Elapsed.TotalSeconds);
                            }
                        }

                        if (!files(mine).Select(Hash).SequenceEqual(files(other).Select(Hash)))
                        {
                            throw new InvalidOperationException("the defragmented copies differ");
                        }

                        oursAfter.Add(files(mine).Sum(Extents));
                        theirsAfter.Add(files(other).Sum(Extents));
                    });
                }

                double m = Median(ours), a = Median(theirs);
                Summary.Add(summary(anchor, before, kind), m, a);
                Console.WriteLine($"| {kind} | {before:N0} | {m:F2} s | {Median(oursAfter.Select(x => (double)x).ToList()):N0} | {anchor}: {a:F2} s | {Median(theirsAfter.Select(x => (double)x).ToList()):N0} | {m / a:F2}× |");
                Console.WriteLine($"<!-- {kind}{commentTag}: ours {string.Join(' ', ours.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))} ({string.Join(' ', oursAfter)} extents); {anchor} {string.Join(' ', theirs.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))} ({string.Join(' ', theirsAfter)} extents) -->");
            }
        }

        /// <summary>
        /// 256 MiB files in 64 KiB pieces: the filesystem is filled with 64 KiB files (xfs'
        /// block reserve set to 0 so nothing large stays free), every other one is deleted, the files are
        /// written into the gaps, and the rest of the filler is deleted so there is room to defragment.
        /// </summary>
        private static void Fragmented(string mnt, params string[] files) => Fragmented(mnt, files.Select(f => (f, FileSize)).ToArray());

        /// <summary>As above, for files of the sizes given (multiples of 1 MiB).</summary>
        internal static void Fragmented(string mnt, (string Path, long Size)[] files)
        {
            bool xfs = Program.Sh("stat", "-f", "-c", "%T", mnt).Trim() == "xfs";
            if (xfs)
            {
                Program.Sh("xfs_io", "-x", "-c", "resblks 0", mnt);
            }

            string fill = Directory.CreateDirectory(Path.Combine(mnt, "fill")).FullName;
            byte[] chunk = new byte[Chunk];
            new Random(5).NextBytes(chunk);
            var names = new List<string>();
            try
            {
                for (int n = 0; ; n++)
                {
                    string name = Path.Combine(fill, n.ToString(CultureInfo.InvariantCulture));
                    names.Add(name);
                    using var f = new FileStream(name, FileMode.CreateNew, FileAccess.Write);
                    f.Write(chunk);
                }
            }
            catch (IOException)
            {
                // full
            }

            Program.Sh("sync");
            for (int i = 0; i < names.Count; i += 2)
            {
                File.Delete(names[i]);
            }

            Program.Sh("sync");
            byte[] data = new byte[1 << 20];
            new Random(6).NextBytes(data);

            // Whatever larger pieces of free space are left go to a throwaway file first.
            string absorber = Path.Combine(mnt, "absorber.bin");
            using (var f = new FileStream(absorber, FileMode.CreateNew, FileAccess.Write))
            {
                for (int i = 0; i < 64; i++)
                {
                    f.Write(data);
                }

                f.Flush(flushToDisk: true);
            }

            foreach ((string file, long size) in files)
            {
                using var f = new FileStream(file, FileMode.CreateNew, FileAccess.Write);
                for (long done = 0; done < size; done += data.Length)
                {
                    data[0] = (byte)(done >> 20);
                    f.Write(data);
                }

                f.Flush(flushToDisk: true);
            }

            for (int i = 1; i < names.Count; i += 2)
            {
                File.Delete(names[i]);
            }

            File.Delete(absorber);

            if (xfs)
            {
                Program.Sh("xfs_io", "-x", "-c", "resblks 8192", mnt);
            }

            Program.Sh("sync");
        }

        /// <summary>
        /// Two identical filesystems (the second a byte copy of the first after <paramref name="fill"/>), mounted:
        /// the two tools start from identical layouts and identical free space; <paramref name="body"/> gets both
        /// mount points.
        /// </summary>
        internal static void WithTwoIdenticalFileSystems(string kind, string size, Action<string> fill, Action<string, string> body)
        {
            string work = $"/tmp/btrfs-bench-{kind}-{Environment.ProcessId}";
            string a = Path.Combine(work, "a.img"), b = Path.Combine(work, "b.img");
            string ma = Path.Combine(work, "a"), mb = Path.Combine(work, "b");
            Directory.CreateDirectory(ma);
            Directory.CreateDirectory(mb);
            try
            {
                Program.Sh("truncate", "-s", size, a);
                if (kind == "xfs")
                {
                    Program.Sh("mkfs.xfs", "-q", "-f", "-m", "reflink=1", a);
                }
                else
                {
                    Program.Sh("mkfs.ext4", "-q", "-F", "-m", "0", a);
                }

                Program.Sh("mount", "-o", "loop", a, ma);
                fill(ma);
                Program.Sh("umount", ma);
                Program.Sh("cp", "--sparse=always", a, b);
                if (kind == "xfs")
                {
                    Program.Sh("xfs_admin", "-U", "generate", b); // two mounts of one xfs UUID are refused
                }

                Program.Sh("mount", "-o", "loop", a, ma);
                Program.Sh("mount", "-o", "loop", b, mb);
                body(ma, mb);
            }
            finally
            {
                Program.Shell("umount", ma);
                Program.Shell("umount", mb);
                Directory.Delete(work, recursive: true);
            }
        }
    }
}
