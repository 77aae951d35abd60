namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>Measure-Fragmentation against filefrag on real btrfs, xfs and ext4 files fragmented on purpose.</summary>
    [Collection(FileSystemCollection.Name)]
    public class MeasureFragmentationTests(LoopFileSystems fs)
    {
        private static FragmentationReport Measure(string path, string extra = "")
        {
            PwshResult r = Pwsh.Run("Measure-Fragmentation -LiteralPath $p " + extra, ("p", path));
            Assert.Empty(r.Errors);
            return Assert.Single(r.Objects<FragmentationReport>());
        }

        [SkippableTheory]
        [InlineData("btrfs")]
        [InlineData("xfs")]
        [InlineData("ext4")]
        public void ExtentAndFragmentCountsAgreeWithFilefrag(string kind)
        {
            // btrfs: random overwrites (COW); xfs and ext4 overwrite in place, so their free space is fragmented first.
            using ExtraFileSystem extra = fs.NewFileSystem(kind, kind == "xfs" ? "320M" : "128M");
            string file = Path.Combine(extra.MountPoint, "f.img");
            if (kind == "btrfs")
            {
                FileBuilder.Fragmented(file, 8 << 20, 1500);
            }
            else
            {
                file = FileBuilder.FragmentedByFreeSpace(extra.MountPoint);
            }

            Shell.Run("sync");
            int lines = Filefrag.Extents(file).Count;
            long found = Filefrag.Found(file);
            FragmentationReport r = Measure(file);
            Assert.True(lines > 50, $"the file has only {lines} extents: not fragmented enough to mean anything");
            Assert.Equal(lines, r.ExtentCount);
            Assert.Equal(found, r.FragmentCount);
            Assert.Equal(kind, r.FileSystem.ToString().ToLowerInvariant());
            Assert.True(r.FragmentationScore > 0);
            Assert.True(r.SmallExtentCount > 0);
            Assert.Equal(new FileInfo(file).Length, r.Size);
        }

        [SkippableFact]
        public void ExtentsContinueAFragmentWhereTheyContinueOnDisk()
        {
            // One 1 MiB extent, then holes punched every other 64 KiB: eight extents that still sit
            // where they were, so across each hole the physical offset moves as much as the logical one.
            string dir = fs.NewDirectory(TestFs.Btrfs, "contig");
            string shifted = Path.Combine(dir, "shifted.img");
            FileBuilder.WriteNew(shifted, FileBuilder.RandomBytes(1 << 20, 4));
            for (int i = 1; i < 16; i += 2)
            {
                Shell.Run("fallocate", "--punch-hole", "-o", (i * 65536).ToString(System.Globalization.CultureInfo.InvariantCulture), "-l", "65536", shifted);
            }

            // Two extents that touch on disk but not in the file: [0,64K) at P and, after a hole,
            // [192K,256K) at P+64K (a clone of [64K,128K) whose original was punched out).
            string dense = Path.Combine(dir, "dense.img");
            FileBuilder.WriteNew(dense, FileBuilder.RandomBytes(128 * 1024, 5));
            Shell.Run("xfs_io", "-c", "reflink " + dense + " 64k 192k 64k", dense);
            Shell.Run("fallocate", "--punch-hole", "-o", "65536", "-l", "65536", dense);

            // Two extents apart on disk: the second half of one 512 KiB extent written again. btrfs writes
            // it elsewhere (copy on write), and not right after the first half: the old second half is still
            // there until the commit. (Before: a file written between two pieces, which the allocator
            // sometimes placed elsewhere, leaving the pieces side by side.)
            string apart = Path.Combine(dir, "apart.img");
            FileBuilder.WriteNew(apart, FileBuilder.RandomBytes(512 * 1024, 6));
            Shell.Run("sync");
            FileBuilder.WriteAt(apart, 256 * 1024, FileBuilder.RandomBytes(256 * 1024, 8));
            Shell.Run("sync");

            FragmentationReport s = Measure(shifted);
            Assert.Equal((8L, 1L), (s.ExtentCount, s.FragmentCount));
            FragmentationReport d = Measure(dense);
            Assert.Equal((2L, 1L), (d.ExtentCount, d.FragmentCount));
            FragmentationReport a = Measure(apart);
            Assert.Equal((2L, 2L), (a.ExtentCount, a.FragmentCount));
            foreach (string f in new[] { shifted, dense, apart })
            {
                Assert.Equal(Filefrag.Found(f), Measure(f).FragmentCount);
            }

            Assert.Equal(0, s.FragmentationScore);
            Assert.Equal(7, s.SmallExtentCount); // every 64 KiB piece but the final one
        }

        [SkippableFact]
        public void ACompressedFileIsNotThousandsOfFragments()
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.BtrfsZstd, "zstd"), "log.txt");
            byte[] text = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 400_000).Select(i => $"line {i} of a compressible log\n")));
            FileBuilder.WriteNew(file, text);
            Shell.Run("sync");
            FragmentationReport r = Measure(file);
            Assert.True(r.ExtentCount >= 50, $"{r.ExtentCount} extents: the data did not compress into 128 KiB pieces");
            Assert.True(r.FragmentCount <= 3, $"{r.FragmentCount} fragments for a file written in one go");
            Assert.True(Filefrag.Found(file) > r.FragmentCount * 10, "filefrag counts every compressed piece");
            Assert.Equal((text.Length + 4095) / 4096 * 4096, r.CompressedBytes); // the final extent ends on a block boundary
            Assert.Equal(0, r.SmallExtentCount); // 128 KiB is the most a compressed extent can be
            Assert.Equal(0, r.FragmentationScore);
        }

        [SkippableFact]
        public void TheThresholdDecidesWhatIsSmall()
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "thresh"), "f.img");
            FileBuilder.Chunks(file, 10, 64 * 1024, 128 * 1024); // ten 64 KiB extents separated by holes
            FragmentationReport small = Measure(file, "-Threshold 32KB");
            FragmentationReport big = Measure(file, "-Threshold 128KB");
            Assert.Equal((0L, 0L), (small.SmallExtentCount, small.SmallExtentBytes));
            Assert.Equal((9L, 9L * 64 * 1024), (big.SmallExtentCount, big.SmallExtentBytes)); // the final extent does not count
            Assert.Equal(32 * 1024, small.Threshold);
            Assert.Equal(64 * 1024, big.LargestExtent);
            Assert.Equal(64 * 1024, big.AverageExtentSize);
        }

        [SkippableFact]
        public void SharedUnwrittenAndNoCowAreMeasured()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "kinds");
            Shell.Run("chattr", "+C", dir);
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 4, 64 * 1024, 64 * 1024);
            Shell.Run("cp", "--reflink=always", file, file + ".copy");
            string prealloc = Path.Combine(dir, "disk.raw");
            Shell.Run("fallocate", "-l", "1M", prealloc);
            FragmentationReport r = Measure(file);
            Assert.Equal(256 * 1024, r.SharedBytes);
            Assert.True(r.IsNoCow);
            FragmentationReport p = Measure(prealloc);
            Assert.Equal(1 << 20, p.UnwrittenBytes);
            Assert.Equal(0, p.SmallExtentCount);
        }

        [SkippableTheory]
        [InlineData((int)TestFs.Btrfs)]
        [InlineData((int)TestFs.Xfs)]
        [InlineData((int)TestFs.Ext4)]
        public void SpacePreallocatedElsewhereAfterTheDataDoesNotMakeTheLastDataFragmentShort(int which)
        {
            // Before: the unwritten extent took the place of the final fragment, so the data's one extent was judged a
            // short fragment: score 100 for a file laid out as well as it can be (and defragmentation planned for it
            // on ext4). Found by a hostile review.
            string dir = fs.NewDirectory((TestFs)which, "prealloc-after");
            string inside = Path.Combine(dir, "inside.img"), past = Path.Combine(dir, "past.img");
            foreach (string f in new[] { inside, past })
            {
                // The allocator may still put the preallocation right after the data (space freed there earlier, under
                // CI's other tests): made again, with the space after the data taken, until it is elsewhere.
                for (int attempt = 0; ; attempt++)
                {
                    FileBuilder.WriteNew(f, FileBuilder.RandomBytes(1 << 20, 82));
                    FileBuilder.WriteNew(f + ".spacer" + attempt, FileBuilder.RandomBytes(1 << 20, 83)); // the next space is taken
                    Shell.Run("fallocate", f == inside ? new[] { "-o", "1M", "-l", "1M", f } : new[] { "-n", "-o", "1M", "-l", "1M", f }); // inside the size, or past its end
                    var made = Filefrag.Extents(f);
                    if ((made.Count == 2 && made[1].Physical != made[0].Physical + made[0].Length) || attempt == 4)
                    {
                        break;
                    }

                    File.Delete(f);
                }
            }

            foreach (string f in new[] { inside, past })
            {
                var extents = Filefrag.Extents(f);
                Assert.True(extents.Count == 2 && extents[1].Flags.Contains("unwritten") && extents[1].Physical != extents[0].Physical + extents[0].Length, $"{f}: {extents.Count} extents, the preallocation elsewhere");
                FragmentationReport r = Measure(f);
                Assert.Equal((2L, 0L, 0L, 0), (r.FragmentCount, r.SmallExtentCount, r.SmallExtentBytes, r.FragmentationScore));
            }
        }

        [SkippableFact]
        public void AnInlineFilesLargestExtentIsItsBytes()
        {
            // Before (a hostile review): a 6-byte file, inline in btrfs metadata, had a largest extent of 4 KiB (the
            // block FIEMAP rounds inline data up to), while Show-ExtentMap said 6 B in 1 extent.
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "inline"), "hello");
            FileBuilder.WriteNew(file, "hello\n"u8.ToArray());
            Shell.Run("sync");
            Assert.Contains("inline", Shell.Run("filefrag", "-v", file), StringComparison.Ordinal);
            FragmentationReport r = Measure(file);
            Assert.Equal((1L, 6L, 6L), (r.ExtentCount, r.LargestExtent, r.AverageExtentSize));
        }

        [SkippableTheory]
        [InlineData((int)TestFs.Xfs)]
        [InlineData((int)TestFs.Ext4)]
        public void FieldsThatCannotOccurAreZeroOnOtherFilesystems(int which)
        {
            string file = Path.Combine(fs.NewDirectory((TestFs)which, "other"), "f.img");
            FileBuilder.Chunks(file, 4, 64 * 1024, 64 * 1024);
            FragmentationReport r = Measure(file);
            Assert.Equal((0L, false), (r.CompressedBytes, r.IsNoCow));
            Assert.True(r.ExtentCount >= 1);
        }

        [SkippableFact]
        public void SummaryTotalsAreTheSumOfThePerFileObjects()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "summary");
            FileBuilder.Fragmented(Path.Combine(dir, "a.img"), 2 << 20, 300, seed: 1);
            FileBuilder.Fragmented(Path.Combine(dir, "b.img"), 2 << 20, 600, seed: 2);
            FileBuilder.Chunks(Path.Combine(dir, "c.img"), 3, 4096, 8192);
            Shell.Run("cp", "--reflink=always", Path.Combine(dir, "c.img"), Path.Combine(dir, "d.img"));
            PwshResult each = Pwsh.Run("Measure-Fragmentation -LiteralPath $d -Recurse", ("d", dir));
            PwshResult sum = Pwsh.Run("Measure-Fragmentation -LiteralPath $d -Recurse -Summary", ("d", dir));
            Assert.Empty(each.Errors);
            Assert.Empty(sum.Errors);
            var files = each.Objects<FragmentationReport>();
            FragmentationSummary s = Assert.Single(sum.Objects<FragmentationSummary>());
            Assert.Equal(4, files.Count);
            Assert.Equal(files.Count, s.Files);
            Assert.Equal(files.Sum(f => f.Size), s.Bytes);
            Assert.Equal(files.Sum(f => f.ExtentCount), s.ExtentCount);
            Assert.Equal(files.Sum(f => f.FragmentCount), s.FragmentCount);
            Assert.Equal(files.Sum(f => f.SmallExtentCount), s.SmallExtentCount);
            Assert.Equal(files.Sum(f => f.SmallExtentBytes), s.SmallExtentBytes);
            Assert.Equal(files.Sum(f => f.SharedBytes), s.SharedBytes);
            Assert.Equal(files.Max(f => f.LargestExtent), s.LargestExtent);
            FragmentationReport worst = files.OrderByDescending(f => f.FragmentCount).First();
            Assert.Equal((worst.Path, worst.FragmentCount), (s.MostFragmentedPath, s.MostFragmentedCount));
        }

        [SkippableFact]
        public void SummaryOfHugeSparseFilesStopsAtTheLargestNumberAndNamesNoUnfragmentedFile()
        {
            // Before: two sparse files of 4 EiB summed to Bytes -9223372036854775808, and a file without a single
            // extent was named the most fragmented (count 0). Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "summary-huge");
            Shell.Run("truncate", "-s", "4611686018427387904", Path.Combine(dir, "s1"));
            Shell.Run("truncate", "-s", "4611686018427387904", Path.Combine(dir, "s2"));
            FileBuilder.WriteNew(Path.Combine(dir, "one.img"), FileBuilder.RandomBytes(64 << 10, 3));
            BtrfsProgs.Sync(dir);
            PwshResult r = Pwsh.Run("Measure-Fragmentation -LiteralPath $d -Recurse -Summary", ("d", dir));
            Assert.Empty(r.Errors);
            FragmentationSummary s = Assert.Single(r.Objects<FragmentationSummary>());
            Assert.Equal(3, s.Files);
            Assert.Equal(long.MaxValue, s.Bytes);
            Assert.Null(s.MostFragmentedPath);
            Assert.Equal(0, s.MostFragmentedCount);
        }

        [SkippableFact]
        public void RecurseStaysOnItsFilesystemAndFollowsNoLinks()
        {
            string root = fs.NewDirectory(TestFs.Btrfs, "tree");
            string sub = Directory.CreateDirectory(Path.Combine(root, "sub")).FullName;
            FileBuilder.Chunks(Path.Combine(root, "a.img"), 1, 4096, 4096);
            FileBuilder.Chunks(Path.Combine(sub, "b.img"), 1, 4096, 4096);
            string outside = fs.NewDirectory(TestFs.Btrfs, "outside");
            FileBuilder.Chunks(Path.Combine(outside, "x.img"), 1, 4096, 4096);
            Directory.CreateSymbolicLink(Path.Combine(root, "link"), outside);
            File.CreateSymbolicLink(Path.Combine(root, "file-link.img"), Path.Combine(outside, "x.img"));
            string mnt = Directory.CreateDirectory(Path.Combine(root, "mnt")).FullName;
            using ExtraFileSystem other = fs.NewFileSystem("ext4", "64M");
            Shell.Run("mount", "--bind", other.MountPoint, mnt);
            try
            {
                FileBuilder.Chunks(Path.Combine(mnt, "m.img"), 1, 4096, 4096);
                PwshResult r = Pwsh.Run("Measure-Fragmentation -LiteralPath $d -Recurse", ("d", root));
                Assert.Empty(r.Errors);
                Assert.Equal(
                    new[] { Path.Combine(root, "a.img"), Path.Combine(sub, "b.img") },
                    r.Objects<FragmentationReport>().Select(x => x.Path).OrderBy(x => x, StringComparer.Ordinal));
                PwshResult cross = Pwsh.Run("Measure-Fragmentation -LiteralPath $d -Recurse -CrossFileSystem", ("d", root));
                Assert.Contains(cross.Objects<FragmentationReport>(), x => x.Path == Path.Combine(mnt, "m.img"));
            }
            finally
            {
                Shell.Run("umount", mnt);
            }
        }

        [SkippableFact]
        public void CrossingIntoAFileSystemWithoutFiemapIsOneErrorForItNotOnePerFile()
        {
            // Before: with -CrossFileSystem every file of a tmpfs in the tree was an error of its own (39,775 for /proc;
            // a hostile test). Now one for that filesystem, each other file there a verbose note; the rest is measured.
            string root = fs.NewDirectory(TestFs.Btrfs, "cross-tmpfs");
            FileBuilder.Chunks(Path.Combine(root, "a.img"), 1, 4096, 4096);
            string mnt = Directory.CreateDirectory(Path.Combine(root, "tm")).FullName;
            using (TmpfsMount.On(mnt))
            {
                for (int i = 0; i < 4; i++)
                {
                    File.WriteAllText(Path.Combine(mnt, $"t{i}"), "tmpfs");
                }

                foreach (string command in new[] { "Measure-Fragmentation", "Get-BtrfsExtent", "Invoke-BtrfsDefrag -Confirm:$false" })
                {
                    PwshResult r = Pwsh.Run(command.Replace(" -Confirm", " -LiteralPath $d -Recurse -CrossFileSystem -Verbose -Confirm", StringComparison.Ordinal) + (command.Contains(' ', StringComparison.Ordinal) ? string.Empty : " -LiteralPath $d -Recurse -CrossFileSystem -Verbose"), ("d", root));
                    ErrorRecord e = Assert.Single(r.Errors);
                    Assert.StartsWith("OperationNotSupported,", e.FullyQualifiedErrorId, StringComparison.Ordinal);
                    Assert.StartsWith(mnt + "/", (string)e.TargetObject, StringComparison.Ordinal);
                    Assert.Contains("are refused the same way: each is passed over with a verbose note", e.Exception.Message, StringComparison.Ordinal);
                    Assert.Equal(3, r.Verbose.Count(v => v.Message.Contains("refused as the other files on its filesystem were", StringComparison.Ordinal)));
                    Assert.Contains(Path.Combine(root, "a.img"), r.Output.Select(o => o.Properties["Path"]?.Value as string));
                }

                // Defragmenting a tree of a filesystem it does not defragment (tmpfs): one error, the tree not walked further
                // (before: an error per file; a hostile test).
                PwshResult own = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $d -Recurse -Confirm:$false", ("d", mnt));
                Assert.Equal(new[] { "OperationNotSupported" }, own.ErrorIds);
                Assert.Contains("they are not walked", own.Errors[0].Exception.Message, StringComparison.Ordinal);
            }
        }

        [SkippableFact]
        public void ProgressIsWrittenWithPercentAndCompletes()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "progress");
            for (int i = 0; i < 20; i++)
            {
                FileBuilder.Chunks(Path.Combine(dir, $"f{i}.img"), 1, 4096, 4096, fsyncEach: false);
            }

            PwshResult r = Pwsh.Run("Measure-Fragmentation -LiteralPath $d -Recurse -Summary", ("d", dir));
            Assert.Empty(r.Errors);
            Assert.Contains(r.Progress, p => p.PercentComplete is > 0 and < 100);
            Assert.Equal(ProgressRecordType.Completed, r.Progress[^1].RecordType);
            Assert.Equal(20, Assert.Single(r.Objects<FragmentationSummary>()).Files);
        }

        /// <summary>
        /// A directory named after a walk with -Depth that reached part of it: the percentage counts only the files
        /// still to be measured in it (before, also those the earlier walk had measured, so it stopped at 50 %).
        /// </summary>
        [SkippableFact]
        public void APartlyWalkedDirectorysProgressReachesAHundredPercent()
        {
            string root = fs.NewDirectory(TestFs.Btrfs, "progress-partly");
            string sub = Directory.CreateDirectory(Path.Combine(root, "sub")).FullName;
            string deep = Directory.CreateDirectory(Path.Combine(sub, "deep")).FullName;
            foreach (string f in new[] { Path.Combine(sub, "x1.img"), Path.Combine(sub, "x2.img"), Path.Combine(deep, "y1.img"), Path.Combine(deep, "y2.img") })
            {
                FileBuilder.Chunks(f, 1, 4096, 4096, fsyncEach: false);
            }

            PwshResult r = Pwsh.Run("Measure-Fragmentation -LiteralPath $root, $sub -Depth 1", ("root", root), ("sub", sub));
            Assert.Empty(r.Errors);
            Assert.Equal(4, r.Objects<FragmentationReport>().Count); // each once: x1 and x2 by the first walk, y1 and y2 by the second
            ProgressRecord last = r.Progress.Last(p => p.RecordType != ProgressRecordType.Completed);
            Assert.True(last.PercentComplete == 100, $"the last record said {last.PercentComplete} %: {last.StatusDescription}");
        }

        [SkippableFact]
        public void ADirectoryWithoutRecurseAndAFileWithoutFiemapAreErrorsAndTheNextPathRuns()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "errs");
            string good = Path.Combine(dir, "good.img");
            FileBuilder.Chunks(good, 1, 4096, 4096);
            string tmp = Path.Combine(fs.NewDirectory(TestFs.Tmpfs, "tmp"), "t.img");
            FileBuilder.WriteNew(tmp, new byte[] { 1 });
            PwshResult r = Pwsh.Run("Measure-Fragmentation -LiteralPath $d, $t, $g", ("d", dir), ("t", tmp), ("g", good));
            Assert.Equal(new[] { "PathIsDirectory", "OperationNotSupported" }, r.ErrorIds);
            Assert.Contains("-Recurse", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Equal(good, Assert.Single(r.Objects<FragmentationReport>()).Path);
        }

        [SkippableFact]
        public void ViewsShowReadableSizesAndObjectsSurviveSerialization()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "view");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 4, 64 * 1024, 128 * 1024);
            var vars = new System.Collections.Generic.Dictionary<string, object?> { ["p"] = file };
            PwshResult table = Pwsh.Run("Measure-Fragmentation -LiteralPath $p | Out-Host; Measure-Fragmentation -LiteralPath $p -Summary | Out-Host", vars, captureHost: true);
            Assert.Empty(table.Errors);
            foreach (string part in new[] { "Directory: " + dir, "Extents", "Fragments", "Score", "vm.img", "192 KiB", "64.0 KiB", "MostFragmentedPath", "32.0 MiB" })
            {
                Assert.Contains(part, table.HostText, StringComparison.Ordinal);
            }

            PwshResult r = Pwsh.Run(
                "$x = [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize((Measure-Fragmentation -LiteralPath $p))); " +
                "$x.PSObject.TypeNames[0]; $x.ExtentCount.GetType().Name; [string]$x.FileSystem; $x.FragmentationScore.GetType().Name",
                ("p", file));
            Assert.Equal(new[] { "Deserialized.Btrfs.Core.FragmentationReport", "Int64", "Btrfs", "Int32" }, r.Output.Select(o => o.ToString()));
        }
    }
}
