// New-BtrfsReflink -Recurse against `cp -a --reflink=always`, and Invoke-BtrfsDedupe against `duperemove -d`,
// side by side in one run (issue #6). Run as root:
//   dotnet run -c Release --project bench/Btrfs.Bench -- reflink [runs]
//   dotnet run -c Release --project bench/Btrfs.Bench -- dedupe [runs]
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

    internal static class ReflinkBench
    {
        internal static int Reflink(int runs)
        {
            return FragmentationBench.WithBtrfs("8G", mnt =>
            {
                Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Program.Sh("cp", "--version").Split('\n')[0]}, {runs} runs, warm cache");
                string tree = Path.Combine(mnt, "tree");
                FragmentationBench.MakeTree(tree, 10_000);
                Program.Sh("sync");
                using Runspace rs = FragmentationBench.Open();
                var module = new List<double>();
                var moduleNoSync = new List<double>();
                var anchor = new List<double>();
                var anchorSync = new List<double>();
                string a = Path.Combine(mnt, "copy-module");
                string b = Path.Combine(mnt, "copy-cp");
                FragmentationBench.Invoke(rs, "param($s) New-BtrfsReflink -LiteralPath $s -Destination ($s + '/../warm') -Recurse -Include f1.dat | Out-Null", tree); // warm the engine and the module
                Program.Sh("rm", "-rf", Path.Combine(mnt, "warm"));
                for (int run = 0; run < runs; run++)
                {
                    // Alternating which side goes first; each side starts after a sync, with a warm cache.
                    for (int k = 0; k < 3; k++)
                    {
                        Program.Sh("sync");
                        var sw = Stopwatch.StartNew();
                        switch ((k + run) % 3)
                        {
                            case 0:
                                FragmentationBench.Invoke(rs, "param($s, $d) New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse | Out-Null", tree, a);
                                module.Add(sw.Elapsed.TotalSeconds); // includes its syncfs at the end
                                Check(tree, a);
                                break;
                            case 1:
                                FragmentationBench.Invoke(rs, "param($s, $d) New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -NoSync | Out-Null", tree, a);
                                moduleNoSync.Add(sw.Elapsed.TotalSeconds);
                                Check(tree, a);
                                break;
                            default:
                                Program.Sh("cp", "-a", "--reflink=always", tree, b);
                                anchor.Add(sw.Elapsed.TotalSeconds);
                                Program.Sh("sync");
                                anchorSync.Add(sw.Elapsed.TotalSeconds);
                                Check(tree, b);
                                break;
                        }
                    }
                }

                Console.WriteLine("| files | New-BtrfsReflink -Recurse (incl. its syncfs) | cp -a --reflink=always + sync | ratio | New-BtrfsReflink -Recurse -NoSync | cp -a --reflink=always | ratio |");
                Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
                double m = FragmentationBench.Median(module), mn = FragmentationBench.Median(moduleNoSync), c = FragmentationBench.Median(anchor), cs = FragmentationBench.Median(anchorSync);
                Console.WriteLine($"| 10,003 | {m:F2} s | {cs:F2} s | {m / cs:F2}× | {mn:F2} s | {c:F2} s | {mn / c:F2}× |");
                Summary.Add("New-BtrfsReflink -Recurse vs cp -a --reflink=always + sync", m, cs);
                Summary.Add("New-BtrfsReflink -Recurse -NoSync vs cp -a --reflink=always", mn, c);
                Console.WriteLine($"<!-- module {FragmentationBench.Join(module)}; module -NoSync {FragmentationBench.Join(moduleNoSync)}; cp {FragmentationBench.Join(anchor)}; cp+sync {FragmentationBench.Join(anchorSync)} -->");
            });

            // The copy must hold the same bytes as the source; then it is removed for the next run.
            static void Check(string tree, string copy)
            {
                if (Program.Sh("bash", "-c", "cd \"$1\" && find . -type f -exec sha256sum {} + | sort", "_", tree) != Program.Sh("bash", "-c", "cd \"$1\" && find . -type f -exec sha256sum {} + | sort", "_", copy))
                {
                    throw new InvalidOperationException("the copy differs from the source");
                }

                Program.Sh("rm", "-rf", copy);
            }
        }

        /// <summary>
        /// New-BtrfsReflink -Recurse -Force over an existing copy of a tree (every file replaced: an exchange of names
        /// under a write lease, and its 50 ms grace) against cp -a --reflink=always over an existing copy (each file
        /// truncated and cloned in place), both followed by their sync.
        /// </summary>
        internal static int ReflinkForce(int runs)
        {
            return FragmentationBench.WithBtrfs("8G", mnt =>
            {
                Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {Program.Sh("cp", "--version").Split('\n')[0]}, {runs} runs, warm cache");
                string tree = Path.Combine(mnt, "tree");
                FragmentationBench.MakeTree(tree, 2_000);
                string a = Directory.CreateDirectory(Path.Combine(mnt, "into-module")).FullName;
                string b = Directory.CreateDirectory(Path.Combine(mnt, "into-cp")).FullName;
                Program.Sh("cp", "-a", "--reflink=always", tree, a);
                Program.Sh("cp", "-a", "--reflink=always", tree, b);
                Program.Sh("sync");
                using Runspace rs = FragmentationBench.Open();
                var module = new List<double>();
                var anchor = new List<double>();
                FragmentationBench.Invoke(rs, "param($s, $d) New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Force -Include f1.dat | Out-Null", tree, a); // warm
                for (int run = 0; run < runs; run++)
                {
                    for (int k = 0; k < 2; k++)
                    {
                        Program.Sh("sync");
                        var sw = Stopwatch.StartNew();
                        if ((k + run) % 2 == 0)
                        {
                            FragmentationBench.Invoke(rs, "param($s, $d) New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Force | Out-Null", tree, a);
                            module.Add(sw.Elapsed.TotalSeconds); // includes its syncfs
                            Same(tree, Path.Combine(a, "tree"));
                        }
                        else
                        {
                            Program.Sh("cp", "-a", "--reflink=always", tree, b);
                            Program.Sh("sync");
                            anchor.Add(sw.Elapsed.TotalSeconds);
                            Same(tree, Path.Combine(b, "tree"));
                        }
                    }
                }

                Console.WriteLine("| files replaced | New-BtrfsReflink -Recurse -Force (incl. its syncfs) | cp -a --reflink=always over the copy + sync | ratio |");
                Console.WriteLine("|---:|---:|---:|---:|");
                double m = FragmentationBench.Median(module), c = FragmentationBench.Median(anchor);
                Console.WriteLine($"| 2,003 | {m:F2} s | {c:F2} s | {m / c:F2}× |");
                Summary.Add("New-BtrfsReflink -Recurse -Force vs cp -a --reflink=always over a copy + sync", m, c);
                Console.WriteLine($"<!-- module {FragmentationBench.Join(module)}; cp {FragmentationBench.Join(anchor)} -->");
            });

            static void Same(string tree, string copy)
            {
                if (Program.Sh("bash", "-c", "cd \"$1\" && find . -type f -exec sha256sum {} + | sort", "_", tree) != Program.Sh("bash", "-c", "cd \"$1\" && find . -type f -exec sha256sum {} + | sort", "_", copy)
                    || Program.Sh("bash", "-c", "cd \"$1\" && find . | sort", "_", copy) != Program.Sh("bash", "-c", "cd \"$1\" && find . | sort", "_", tree))
                {
                    throw new InvalidOperationException("the copy differs from the source (or holds other names)");
                }
            }
        }

        internal static int Dedupe(int runs)
        {
            return FragmentationBench.WithBtrfs("8G", mnt =>
            {
                Console.WriteLine($"kernel {Program.Sh("uname", "-r").Trim()}, {Environment.ProcessorCount} cores, .NET {Environment.Version}, duperemove {Program.Sh("duperemove", "--version").Trim()}, {runs} runs, warm cache");
                using Runspace rs = FragmentationBench.Open();

                // Warm the engine and the cmdlet's code on a small pair first: the runs measure the dedupe,
                // not the first call's JIT (about 0.2 s once per session).
                Write(Path.Combine(mnt, "w1.img"), 1L << 20);
                Program.Sh("cp", "--reflink=never", Path.Combine(mnt, "w1.img"), Path.Combine(mnt, "w2.img"));
                FragmentationBench.Invoke(rs, "param($m) Invoke-BtrfsDedupe -LiteralPath ($m + '/w1.img') -Destination ($m + '/w2.img') | Out-Null", mnt);
                var module = new List<double>();
                var anchor = new List<double>();
                var sharedModule = new List<long>();
                var sharedAnchor = new List<long>();
                var perGiBModule = new List<double>();
                var perGiBAnchor = new List<double>();
                for (int run = 0; run < runs; run++)
                {
                    // Identical pairs made the way users get them: a plain copy of the same file.
                    Write(Path.Combine(mnt, "m1.img"), 1L << 30);
                    foreach (string n in new[] { "m2", "d1", "d2" })
                    {
                        Program.Sh("cp", "--reflink=never", Path.Combine(mnt, "m1.img"), Path.Combine(mnt, n + ".img"));
                    }

                    Program.Sh("sync");

                    // duperemove: hash first (not timed), then the timed dedupe phase reading the hashfile. It matches
                    // extents (with --dedupe-options=partial also portions of them), so what it shares follows the
                    // copies' extent boundaries and is often less than the 1 GiB Invoke-BtrfsDedupe shares: the
                    // comparison is the time per GiB actually shared (FIEMAP), each run's own.
                    string hashes = Path.Combine(mnt, "hashes.db");
                    File.Delete(hashes);
                    Program.Sh("duperemove", "-q", "--dedupe-options=partial", "--hashfile=" + hashes, Path.Combine(mnt, "d1.img"), Path.Combine(mnt, "d2.img"));
                    for (int k = 0; k < 2; k++)
                    {
                        var sw = Stopwatch.StartNew();
                        if ((k + run) % 2 == 0)
                        {
                            FragmentationBench.Invoke(rs, "param($m) Invoke-BtrfsDedupe -LiteralPath ($m + '/m1.img') -Destination ($m + '/m2.img') | Out-Null", mnt);
                            module.Add(sw.Elapsed.TotalSeconds);
                        }
                        else
                        {
                            Program.Sh("duperemove", "-q", "-d", "--dedupe-options=partial", "--hashfile=" + hashes, Path.Combine(mnt, "d1.img"), Path.Combine(mnt, "d2.img"));
                            anchor.Add(sw.Elapsed.TotalSeconds);
                        }
                    }

                    long moduleShared = SharedBytes(Path.Combine(mnt, "m2.img"));
                    long anchorShared = SharedBytes(Path.Combine(mnt, "d2.img"));
                    if (moduleShared != 1L << 30)
                    {
                        throw new InvalidOperationException($"m2.img: only {moduleShared} bytes shared after Invoke-BtrfsDedupe");
                    }

                    sharedModule.Add(moduleShared);
                    sharedAnchor.Add(anchorShared);
                    perGiBModule.Add(module[^1] / ((double)moduleShared / (1L << 30)));
                    if (anchorShared > 0)
                    {
                        perGiBAnchor.Add(anchor[^1] / ((double)anchorShared / (1L << 30)));
                    }
                    foreach (string n in new[] { "m1", "m2", "d1", "d2" })
                    {
                        File.Delete(Path.Combine(mnt, n + ".img"));
                    }
                }

                Console.WriteLine("| pair | Invoke-BtrfsDedupe | bytes shared after | s per GiB shared | duperemove -d --dedupe-options=partial (dedupe phase, hashes already in its hashfile) | bytes shared after | s per GiB shared | ratio (per GiB shared) |");
                Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
                double mm = FragmentationBench.Median(module), aa = FragmentationBench.Median(anchor);
                double pm = FragmentationBench.Median(perGiBModule), pa = FragmentationBench.Median(perGiBAnchor);
                Summary.Add("Invoke-BtrfsDedupe vs duperemove -d --dedupe-options=partial (dedupe phase, seconds per GiB shared)", pm, pa);
                Console.WriteLine($"| 2 × 1 GiB, identical | {mm:F2} s | {sharedModule.Min():N0} | {pm:F2} | {aa:F2} s | {sharedAnchor.Min():N0}–{sharedAnchor.Max():N0} | {pa:F2} | {pm / pa:F2}× |");
                Console.WriteLine($"<!-- module {FragmentationBench.Join(module)}; duperemove {FragmentationBench.Join(anchor)}; duperemove shared {string.Join(' ', sharedAnchor)} -->");
            });
        }

        private static long SharedBytes(string path)
        {
            long total = 0;
            foreach (string line in Program.Sh("filefrag", "-v", "-b1", path).Split('\n'))
            {
                if (line.Contains("shared", StringComparison.Ordinal))
                {
                    string[] f = line.Split(':', StringSplitOptions.TrimEntries);
                    total += long.Parse(f[3], CultureInfo.InvariantCulture);
                }
            }

            return total;
        }

        private static void Write(string path, long size)
        {
            var rng = new Random(21);
            byte[] chunk = new byte[1 << 20];
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
            for (long off = 0; off < size; off += chunk.Length)
            {
                rng.NextBytes(chunk);
                fs.Write(chunk);
            }

            fs.Flush(flushToDisk: true);
        }
    }
}
