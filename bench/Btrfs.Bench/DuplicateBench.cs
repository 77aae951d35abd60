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

    /// <summary>
    /// Issue #19: `Find-BtrfsDuplicate -Recurse | Invoke-BtrfsDedupe` against `duperemove -dr` on btrfs
    /// and xfs: 8 images of 256 MiB copied from one template (plain copies), each with 5 % of its 4 KiB
    /// blocks overwritten at random, and 5,000 unrelated small files; caches dropped before each side.
    /// Wall time, bytes read from the device, disk bytes freed (df after sync), peak memory, and the
    /// device's raw sequential read rate (dd) as the limit.
    /// </summary>
    internal static class DuplicateBench
    {
        private const int Images = 8;
        private const int ImageMiB = 256;

        internal static int Run(int runs)
        {
            Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Program.Sh("duperemove", "--version").Trim()}, {runs} run(s), caches dropped before each side");
            Console.WriteLine("| filesystem | tool | wall time | read from the device | disk bytes freed (df) | peak memory | raw dd read rate |");
            Console.WriteLine("|---|---|---:|---:|---:|---:|---:|");
            foreach (string kind in new[] { "btrfs", "xfs" })
            {
                var ours = new List<(double Time, long Read, long Freed, string Memory)>();
                var theirs = new List<(double Time, long Read, long Freed, string Memory)>();
                string rate = string.Empty;

                // Memory: the pipeline in a child process of its own (its peak resident set, PowerShell included, and the growth during the pipeline).
                string memory = string.Empty;
                WithFileSystem(kind, mnt => memory = Program.Sh("dotnet", System.Reflection.Assembly.GetExecutingAssembly().Location, "duplicates-child", Make(mnt)).Trim());

                // Time: in this process, in a runspace warmed by a search of one small file (as every comparison here).
                using Runspace rs = Open();
                for (int run = 0; run < runs; run++)
                {
                    // Alternating which side goes first: this machine's device swings between runs.
                    for (int k = 0; k < 2; k++)
                    {
                        if ((k + run) % 2 == 0)
                        {
                            WithFileSystem(kind, mnt =>
                            {
                                string tree = Make(mnt);
                                rate = RawRate(mnt, Path.Combine(tree, "vm0.img"));
                                Invoke(rs, "param($d) Find-BtrfsDuplicate -LiteralPath $d | Out-Null", Path.Combine(tree, "small", "f00000"));
                                ours.Add(Side(mnt, () => { Invoke(rs, "param($d) Find-BtrfsDuplicate -LiteralPath $d -Recurse | Invoke-BtrfsDedupe -Confirm:$false | Out-Null", tree); return memory; }));
                            });
                        }
                        else
                        {
                            WithFileSystem(kind, mnt =>
                            {
                                string tree = Make(mnt);
                                theirs.Add(Side(mnt, () => Duperemove(tree)));
                            });
                        }
                    }
                }

                Console.WriteLine($"<!-- {kind}: ours {string.Join(' ', ours.Select(o => o.Time.ToString("F2", CultureInfo.InvariantCulture)))}; duperemove -dr {string.Join(' ', theirs.Select(o => o.Time.ToString("F2", CultureInfo.InvariantCulture)))} -->");

                Print(kind, "Find-BtrfsDuplicate -Recurse \\| Invoke-BtrfsDedupe", ours, rate);
                Print(kind, "duperemove -dr", theirs, rate);
                Summary.Add($"Find-BtrfsDuplicate | Invoke-BtrfsDedupe vs duperemove -dr ({kind}, 8 x 256 MiB)", Median(ours.Select(o => o.Time).ToList()), Median(theirs.Select(o => o.Time).ToList()), 0.8);

                // The search alone against dd of the same files (the images, one after the other, 8 MiB requests):
                // the images' bytes it searched per second (the whole search, walk and grouping included), against
                // the rate dd reads them. On xfs the search reads them all; on btrfs (as root) it reads almost none
                // of them, their checksums standing for them, so its rate is no longer bounded by the device's.
                var searchRates = new List<double>();
                var ddRates = new List<double>();
                for (int run = 0; run < runs; run++)
                {
                    WithFileSystem(kind, mnt =>
                    {
                        string tree = Make(mnt);
                        Invoke(rs, "param($d) Find-BtrfsDuplicate -LiteralPath $d | Out-Null", Path.Combine(tree, "small", "f00000"));
                        for (int k = 0; k < 2; k++)
                        {
                            if ((k + run) % 2 == 0)
                            {
                                var side = Side(mnt, () => { Invoke(rs, "param($d) Find-BtrfsDuplicate -LiteralPath $d -Recurse | Out-Null", tree); return string.Empty; });
                                long images = Directory.GetFiles(tree, "*.img").Sum(f => new FileInfo(f).Length);
                                searchRates.Add(images / 1048576.0 / side.Time);
                            }
                            else
                            {
                                var side = Side(mnt, () =>
                                {
                                    foreach (string image in Directory.GetFiles(tree, "*.img").Order(StringComparer.Ordinal))
                                    {
                                        Program.Sh("dd", $"if={image}", "of=/dev/null", "bs=8M", "status=none");
                                    }

                                    return string.Empty;
                                });
                                ddRates.Add(side.Read / 1048576.0 / side.Time);
                            }
                        }
                    });
                }

                Console.WriteLine($"<!-- {kind}: data searched {string.Join(' ', searchRates.Select(r => r.ToString("F0", CultureInfo.InvariantCulture)))} MiB/s; dd {string.Join(' ', ddRates.Select(r => r.ToString("F0", CultureInfo.InvariantCulture)))} MiB/s -->");
                Summary.Add($"Find-BtrfsDuplicate -Recurse data searched per second vs dd's read rate of the same files ({kind}; ratio: dd's per ours)", Median(searchRates), Median(ddRates), 1.25, "MiB/s", moreIsBetter: true);

                // With a hash file: cold (no file yet), then warm after one image changed (2,000 random 4 KiB blocks rewritten).
                var oursCold = new List<(double Time, long Read, long Freed, string Memory)>();
                var oursWarm = new List<(double Time, long Read, long Freed, string Memory)>();
                var theirsCold = new List<(double Time, long Read, long Freed, string Memory)>();
                var theirsWarm = new List<(double Time, long Read, long Freed, string Memory)>();
                for (int run = 0; run < runs; run++)
                {
                    WithFileSystem(kind, mnt =>
                    {
                        string tree = Make(mnt), db = Path.Combine(mnt, "hashes.db");
                        Invoke(rs, "param($d) Find-BtrfsDuplicate -LiteralPath $d | Out-Null", Path.Combine(tree, "small", "f00000"));
                        const string pipeline = "param($d, $h) Find-BtrfsDuplicate -LiteralPath $d -Recurse -HashFile $h | Invoke-BtrfsDedupe -Confirm:$false | Out-Null";
                        oursCold.Add(Side(mnt, () => { Invoke(rs, pipeline, tree, db); return string.Empty; }));
                        Change(tree);
                        oursWarm.Add(Side(mnt, () => { Invoke(rs, pipeline, tree, db); return string.Empty; }));
                    });
                    WithFileSystem(kind, mnt =>
                    {
                        string tree = Make(mnt), db = Path.Combine(mnt, "duperemove.hash");
                        theirsCold.Add(Side(mnt, () => Duperemove(tree, db)));
                        Change(tree);
                        theirsWarm.Add(Side(mnt, () => Duperemove(tree, db)));
                    });
                }

                Print(kind, "Find-BtrfsDuplicate -HashFile (cold) \\| Invoke-BtrfsDedupe", oursCold, rate);
                Print(kind, "Find-BtrfsDuplicate -HashFile (warm, one image changed) \\| Invoke-BtrfsDedupe", oursWarm, rate);
                Print(kind, "duperemove -dr --hashfile (cold)", theirsCold, rate);
                Print(kind, "duperemove -dr --hashfile (warm, one image changed)", theirsWarm, rate);
                Summary.Add($"Find-BtrfsDuplicate -HashFile warm vs its own cold run ({kind})", Median(oursWarm.Select(o => o.Time).ToList()), Median(oursCold.Select(o => o.Time).ToList()), 0.2);
                Summary.Add($"Find-BtrfsDuplicate -HashFile warm vs duperemove --hashfile warm ({kind})", Median(oursWarm.Select(o => o.Time).ToList()), Median(theirsWarm.Select(o => o.Time).ToList()), 1.0);
            }

            return 0;
        }

        /// <summary>One image changed: 2,000 random 4 KiB blocks of vm3.img rewritten (the same every time), synced.</summary>
        private static void Change(string tree)
        {
            var rng = new Random(4242);
            byte[] block = new byte[4096];
            using (var f = new FileStream(Path.Combine(tree, "vm3.img"), FileMode.Open, FileAccess.Write))
            {
                for (int k = 0; k < 2000; k++)
                {
                    rng.NextBytes(block);
                    f.Position = rng.Next(ImageMiB * 256) * 4096L;
                    f.Write(block);
                }
            }

            Program.Sh("sync");
        }

        private static void Print(string kind, string tool, List<(double Time, long Read, long Freed, string Memory)> xs, string rate)
        {
            var t = xs.OrderBy(x => x.Time).ToList()[xs.Count / 2];
            Console.WriteLine($"| {kind} | {tool} | {t.Time:F2} s | {t.Read / 1048576.0:F0} MiB | {t.Freed / 1048576.0:F1} MiB | {t.Memory} | {rate} |");
        }

        /// <summary>Drops caches, runs one side, and measures time, device reads (its stat file), df before/after (synced).</summary>
        private static (double Time, long Read, long Freed, string Memory) Side(string mnt, Func<string> run)
        {
            string device = Path.GetFileName(Program.Sh("findmnt", "-n", "-o", "SOURCE", mnt).Trim());
            Program.Sh("sync");
            long used = Used(mnt);
            DropCaches();
            long readBefore = BlockDeviceCounters.BytesRead(device);
            var sw = Stopwatch.StartNew();
            string memory = run();
            double time = sw.Elapsed.TotalSeconds;
            long read = BlockDeviceCounters.BytesRead(device) - readBefore;
            Program.Sh("sync");
            return (time, read, used - Used(mnt), memory);
        }

        /// <summary>Child process: the pipeline, then its peak resident set (VmHWM).</summary>
        internal static int Child(string tree)
        {
            using Runspace rs = Open();
            Invoke(rs, "param($d) Find-BtrfsDuplicate -LiteralPath $d | Out-Null", Path.Combine(tree, "small", "f00000"));
            string growth = Program.PeakMemory(() => Invoke(rs, "param($d) Find-BtrfsDuplicate -LiteralPath $d -Recurse | Invoke-BtrfsDedupe -Confirm:$false | Out-Null", tree)).Split(' ')[0];
            Console.WriteLine($"{Program.VmHwm() / 1024.0:F0}MiB (+{growth})");
            return 0;
        }

        private static string Duperemove(string tree, string? hashFile = null)
        {
            string[] args = hashFile is null ? new[] { "-f", "%M", "duperemove", "-dr", "-q", tree } : new[] { "-f", "%M", "duperemove", "-dr", "-q", $"--hashfile={hashFile}", tree };
            var psi = new ProcessStartInfo("/usr/bin/time", args) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            p.StandardOutput.ReadToEnd();
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            string last = err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last().Trim();
            return long.TryParse(last, out long kib) ? $"{kib / 1024.0:F0}MiB" : "?";
        }

        /// <summary>The template, 8 plain copies with 5 % of their blocks overwritten, 5,000 small files (same seeds every time).</summary>
        private static string Make(string mnt)
        {
            string tree = Directory.CreateDirectory(Path.Combine(mnt, "tree")).FullName;
            var rng = new Random(1919);
            byte[] chunk = new byte[1 << 20];
            string template = Path.Combine(tree, "template.img");
            using (var f = new FileStream(template, FileMode.CreateNew))
            {
                for (int i = 0; i < ImageMiB; i++)
                {
                    rng.NextBytes(chunk);
                    f.Write(chunk);
                }
            }

            byte[] block = new byte[4096];
            int blocks = ImageMiB * 256;
            for (int v = 0; v < Images; v++)
            {
                string image = Path.Combine(tree, $"vm{v}.img");
                Program.Sh("cp", "--reflink=never", template, image);
                using var f = new FileStream(image, FileMode.Open, FileAccess.Write);
                for (int k = 0; k < blocks / 20; k++)
                {
                    rng.NextBytes(block);
                    f.Position = rng.Next(blocks) * 4096L;
                    f.Write(block);
                }
            }

            string small = Directory.CreateDirectory(Path.Combine(tree, "small")).FullName;
            for (int i = 0; i < 5000; i++)
            {
                byte[] data = new byte[rng.Next(1, 17) * 1024];
                rng.NextBytes(data);
                File.WriteAllBytes(Path.Combine(small, $"f{i:D5}"), data);
            }

            Program.Sh("sync");
            return tree;
        }

        private static string RawRate(string mnt, string file)
        {
            DropCaches();
            var sw = Stopwatch.StartNew();
            Program.Sh("dd", $"if={file}", "of=/dev/null", "bs=8M", "status=none");
            return $"{ImageMiB / sw.Elapsed.TotalSeconds:F0} MiB/s";
        }

        private static long Used(string mnt)
        {
            var d = new DriveInfo(mnt);
            return d.TotalSize - d.AvailableFreeSpace;
        }

        private static void WithFileSystem(string kind, Action<string> body) => FragmentationBench.WithFileSystem(kind, "4G", body);
    }
}
