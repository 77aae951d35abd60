namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Threading;
    using System.Threading.Tasks;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>The Core FIEMAP reader used on its own, without PowerShell.</summary>
    [Collection(FileSystemCollection.Name)]
    public class CoreReaderTests(LoopFileSystems fs)
    {
        private static List<(long, long, long, ExtentFlags)> Map(string path, ExtentQuery q)
        {
            using OpenFile f = OpenFile.OpenRead(path);
            return ExtentMap.Read(f, q).Select(x => (x.LogicalOffset, x.PhysicalOffset, x.Length, x.Flags)).ToList();
        }

        /// <summary>
        /// The mount table read once per file (the swap checks) is read again only when the kernel says it changed:
        /// the same table while nothing is mounted, a new one that shows a mount made meanwhile, and one without it
        /// once it is unmounted (a remount that changes an option included); and again once it is a second old (a
        /// filesystem's own options can change without a mount event).
        /// </summary>
        [SkippableFact]
        public void TheCurrentMountTableIsReadAgainWhenAMountChangedOrASecondPassed()
        {
            string at = Directory.CreateDirectory(Path.Combine(fs.Root, "mounttable-" + Guid.NewGuid().ToString("N")[..8])).FullName;
            Thread.Sleep(MountInfo.MaxAge + TimeSpan.FromMilliseconds(100)); // a table another test read a moment ago would expire meanwhile
            MountTable first = MountTable.Current();
            Assert.Same(first, MountTable.Current());
            Thread.Sleep(MountInfo.MaxAge + TimeSpan.FromMilliseconds(100));
            MountTable aged = MountTable.Current();
            Assert.NotSame(first, aged);
            Assert.Same(aged, MountTable.Current());
            first = aged;
            Assert.DoesNotContain(first.Entries, e => e.MountPoint == at);
            using (TmpfsMount.On(at, source: "cachetest"))
            {
                MountTable mounted = MountTable.Current();
                Assert.NotSame(first, mounted);
                Assert.Contains(mounted.Entries, e => e.MountPoint == at && e.FileSystemType == "tmpfs");
                Assert.Same(mounted, MountTable.Current());
                Shell.Run("mount", "-o", "remount,ro", at);
                MountTable remounted = MountTable.Current();
                Assert.NotSame(mounted, remounted);
                Assert.Contains(remounted.Entries, e => e.MountPoint == at && e.MountOptions.Split(',').Contains("ro"));
            }

            Assert.DoesNotContain(MountTable.Current().Entries, e => e.MountPoint == at);
        }

        /// <summary>
        /// Before: a refused open by path (a symbolic link, a missing name, a FIFO) left the directory it had
        /// opened to look inside to the finalizer; in a long session such a descriptor on a subvolume's root
        /// keeps a deleted subvolume from the cleaner. Now every way out but success closes it. (The finalizer
        /// held off while counting: a garbage collection meanwhile could only hide a leak, never make one.)
        /// </summary>
        [SkippableFact]
        public void ARefusedOpenLeavesNoDescriptorOfItsDirectoryBehind()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "fdleak");
            File.CreateSymbolicLink(Path.Combine(dir, "link"), "/etc/hostname");
            Shell.Run("mkfifo", Path.Combine(dir, "fifo"));
            int Held() => Directory.EnumerateFileSystemEntries("/proc/self/fd").Count(f => // (a descriptor of a directory is listed as one)
            {
                try
                {
                    return new FileInfo(f).LinkTarget == dir;
                }
                catch (IOException)
                {
                    return false;
                }
            });

            GC.Collect();
            GC.WaitForPendingFinalizers();
            int before = Held(), after;
            using (var probe = DirectoryHandle.Open(dir))
            {
                Assert.Equal(before + 1, Held()); // the count sees a descriptor of the directory
            }

            bool noGc = GC.TryStartNoGCRegion(64 << 20);
            try
            {
                foreach (string name in new[] { "link", "missing", "fifo" })
                {
                    for (int i = 0; i < 20; i++)
                    {
                        Assert.Throws<FileOperationException>(() => OpenFile.Open(Path.Combine(dir, name), OpenOptions.NoFollow));
                    }
                }

                after = Held();
            }
            finally
            {
                try
                {
                    if (noGc && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion)
                    {
                        GC.EndNoGCRegion();
                    }
                }
                catch (InvalidOperationException)
                {
                    // Another test's allocations ended the region meanwhile: that can only hide a leak, never make one.
                }
            }

            Assert.Equal(before, after);
        }

        /// <summary>
        /// O_DIRECT is turned on where the filesystem takes it (and reads then fill no cache: xfs; btrfs on
        /// this kernel still caches part of what it reads that way), and a
        /// descriptor whose filesystem refuses it (procfs: EINVAL) is left as it was, reading through the cache.
        /// </summary>
        [SkippableFact]
        public void DirectReadsAreTurnedOnWhereTheyAreTakenAndOtherwiseNothingChanges()
        {
            string path = Path.Combine(fs.NewDirectory(TestFs.Xfs, "direct"), "d.img");
            byte[] data = FileBuilder.RandomBytes(1 << 20, 5);
            FileBuilder.WriteNew(path, data);
            Shell.Run("sync");
            File.WriteAllText("/proc/sys/vm/drop_caches", "1");
            using (OpenFile f = OpenFile.OpenRead(path))
            using (var buffer = new AlignedBuffer(1 << 20))
            {
                Assert.True(Files.TryReadDirect(f.Handle));
                Assert.Contains("O_DIRECT", FdFlags(f.Handle), StringComparison.Ordinal);
                Assert.Equal(1 << 20, Files.ReadFullyAt(f.Handle, buffer.Span, 0, path));
                Assert.Equal(data, buffer.Span.ToArray());
                Files.ReadBuffered(f.Handle);
                Assert.DoesNotContain("O_DIRECT", FdFlags(f.Handle), StringComparison.Ordinal);
            }

            Assert.Equal("0", Shell.Run("fincore", "--raw", "--noheadings", "--bytes", "--output", "RES", path).Trim());
            using OpenFile proc = OpenFile.OpenRead("/proc/self/status");
            string before = FdFlags(proc.Handle);
            Assert.False(Files.TryReadDirect(proc.Handle));
            Assert.Equal(before, FdFlags(proc.Handle));
        }

        /// <summary>The descriptor's status flags as /proc/self/fdinfo shows them (octal), named where it matters.</summary>
        private static string FdFlags(Btrfs.Interop.SafeFileDescriptor fd)
        {
            string info = File.ReadAllText($"/proc/self/fdinfo/{fd.DangerousGetHandle()}");
            long flags = Convert.ToInt64(info.Split('\n').First(l => l.StartsWith("flags:", StringComparison.Ordinal))[6..].Trim(), 8);
            return (flags & Btrfs.Interop.Libc.O_DIRECT) != 0 ? $"{flags:x} O_DIRECT" : $"{flags:x}";
        }

        [SkippableTheory]
        [InlineData(TestFs.Btrfs)]
        [InlineData(TestFs.Xfs)]
        [InlineData(TestFs.Ext4)]
        public void PageSizeDoesNotChangeTheResult(TestFs which)
        {
            string path = Path.Combine(fs.NewDirectory(which, "paging"), "p.img");
            FileBuilder.Chunks(path, 101, 4096, 12288);

            var reference = Map(path, new ExtentQuery { PageExtents = 512 });
            Assert.Equal(101, reference.Count(x => (x.Item4 & ExtentFlags.Unwritten) == 0)); // xfs adds speculative preallocation
            foreach (int page in new[] { 1, 2, 7, 100, 101 })
            {
                Assert.Equal(reference, Map(path, new ExtentQuery { PageExtents = page }));
            }

            // A range starting inside extent 50 and ending inside extent 60, paged one extent at a time:
            // no duplicates, no gaps, the first extent cut at the range start.
            if (which != TestFs.Xfs)
            {
                var ranged = Map(path, new ExtentQuery { Offset = (12288 * 50) + 1000, Length = 12288 * 10, PageExtents = 1 });
                Assert.Equal(Enumerable.Range(51, 10).Select(i => (long)i * 12288).Prepend((12288 * 50) + 1000L), ranged.Select(x => x.Item1));
                Assert.Equal(4096 - 1000, ranged[0].Item3);
                Assert.Equal(1000, ranged[^1].Item3);
            }
        }

        [SkippableFact]
        public void AFileAppendedToWhileMappedNeitherCrashesNorLoops()
        {
            string path = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "append"), "growing.log");
            FileBuilder.Chunks(path, 4, 4096, 8192);
            using var stop = new CancellationTokenSource();
            Task writer = Task.Run(() =>
            {
                using var w = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
                byte[] block = FileBuilder.RandomBytes(4096, 9);
                while (!stop.IsCancellationRequested)
                {
                    w.Write(block);
                    w.Flush(flushToDisk: true);
                    w.Seek(4096, SeekOrigin.Current); // leave a hole: every append is a new extent
                }
            });

            try
            {
                for (int round = 0; round < 50; round++)
                {
                    Task<List<(long, long, long, ExtentFlags)>> map = Task.Run(() => Map(path, new ExtentQuery { PageExtents = 3 }));
                    Assert.True(map.Wait(TimeSpan.FromSeconds(20)), "mapping a growing file did not finish");
                    List<(long Logical, long, long Length, ExtentFlags)> e = map.Result;
                    Assert.True(e.Count >= 4);
                    for (int i = 1; i < e.Count; i++)
                    {
                        Assert.True(e[i].Logical >= e[i - 1].Logical + e[i - 1].Length, $"extent {i} overlaps or goes back");
                    }
                }
            }
            finally
            {
                stop.Cancel();
                writer.Wait(TimeSpan.FromSeconds(20));
            }
        }

        [SkippableFact]
        public void StoppingEarlyWhileTheNextPageIsBeingFetchedLeaksNothing()
        {
            // Three pages of 64: after the first extent, page 2 is being fetched on another thread.
            string path = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "early"), "e.img");
            FileBuilder.Chunks(path, 200, 4096, 8192, fsyncEach: false);
            int fdsBefore = Directory.GetFiles("/proc/self/fd").Length;
            for (int i = 0; i < 200; i++)
            {
                using OpenFile f = OpenFile.OpenRead(path);
                FileExtent first = ExtentMap.Read(f, new ExtentQuery { PageExtents = 64, Sync = i == 0 }).First();
                Assert.Equal(0, first.LogicalOffset);
            }

            Assert.InRange(Directory.GetFiles("/proc/self/fd").Length, 0, fdsBefore + 4);

            // And a full read across pages still sees every extent exactly once.
            using OpenFile all = OpenFile.OpenRead(path);
            Assert.Equal(Enumerable.Range(0, 200).Select(i => i * 8192L), ExtentMap.Read(all, new ExtentQuery { PageExtents = 64 }).Select(x => x.LogicalOffset));
        }
    }
}
