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

        internal static int Run()
        {
            Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Program.Sh("xfs_fsr", "-V").Trim()}, e4defrag (e2fsprogs {Program.Sh("dpkg-query", "-W", "-f", "${Version}", "e2fsprogs").Trim()}); caches dropped before each timed command; one run");
            Console.WriteLine("| filesystem | extents before (each copy) | Invoke-BtrfsDefrag + sync | extents after | anchor + sync | extents after | time ratio |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
            foreach ((string kind, string anchor) in new[] { ("xfs", "xfs_fsr"), ("ext4", "e4defrag") })
            {
                WithTwoIdenticalFileSystems(kind, "1600M", (ours, theirs) =>
                {
                    long before = Extents(ours), beforeAnchor = Extents(theirs);
                    using Runspace rs = Open();
                    Invoke(rs, "param($f) Measure-Fragmentation -LiteralPath $f | Out-Null", ours); // warm the engine and the module

                    DropCaches();
                    var sw = Stopwatch.StartNew();
                    Program.Shell(anchor, anchor == "xfs_fsr" ? new[] { "-v", theirs } : new[] { theirs });
                    Program.Sh("sync");
                    double ta = sw.Elapsed.TotalSeconds;

                    DropCaches();
                    sw.Restart();
                    Invoke(rs, "param($f) Invoke-BtrfsDefrag -LiteralPath $f | Out-Null", ours);
                    Program.Sh("sync");
                    double tm = sw.Elapsed.TotalSeconds;

                    if (Hash(ours) != Hash(theirs))
                    {
                        throw new InvalidOperationException("the defragmented copies differ");
                    }

                    Console.WriteLine($"| {kind} | {before:N0} / {beforeAnchor:N0} | {tm:F2} s | {Extents(ours):N0} | {anchor}: {ta:F2} s | {Extents(theirs):N0} | {tm / ta:F2}× |");
                });
            }

            return 0;
        }

        /// <summary>
        /// 256 MiB files in 64 KiB pieces: the filesystem is filled with 64 KiB files (xfs'
        /// block reserve set to 0 so nothing large stays free), every other one is deleted, the files are
        /// written into the gaps, and the rest of the filler is deleted so there is room to defragment.
        /// </summary>
        private static void Fragmented(string mnt, params string[] files)
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

            foreach (string file in files)
            {
                using var f = new FileStream(file, FileMode.CreateNew, FileAccess.Write);
                for (long done = 0; done < FileSize; done += data.Length)
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
        /// Makes one filesystem with the fragmented file, then a byte-for-byte copy of its image, and
        /// mounts both: the two tools start from identical layouts and identical free space.
        /// </summary>
        private static void WithTwoIdenticalFileSystems(string kind, string size, Action<string, string> body)
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
                Fragmented(ma, Path.Combine(ma, "vm.img"));
                Program.Sh("umount", ma);
                Program.Sh("cp", "--sparse=always", a, b);
                if (kind == "xfs")
                {
                    Program.Sh("xfs_admin", "-U", "generate", b); // two mounts of one xfs UUID are refused
                }

                Program.Sh("mount", "-o", "loop", a, ma);
                Program.Sh("mount", "-o", "loop", b, mb);
                body(Path.Combine(ma, "vm.img"), Path.Combine(mb, "vm.img"));
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
