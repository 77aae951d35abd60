namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// Get-BtrfsExtentOwner (-Detailed) against btrfs-progs: the references from `logical-resolve -P -o`, the
    /// subvolume paths from `subvolume list`, the names from `inode-resolve`.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class ExtentOwnerTests(LoopFileSystems fs)
    {
        /// <summary>
        /// vol/a.bin (1 MiB, one extent) with a hard link and a reflink copy in vol, a reflink copy in
        /// another subvolume and one at the top level, and a nested snapshot of vol: seven names, six
        /// references.
        /// </summary>
        private static (string A, long Address) Tree(string m)
        {
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(m, "vol"));
            string a = Path.Combine(m, "vol", "a.bin");
            FileBuilder.WriteNew(a, FileBuilder.RandomBytes(1 << 20, 31));
            Shell.Run("ln", a, Path.Combine(m, "vol", "a-link.bin"));
            Shell.Run("cp", "--reflink=always", a, Path.Combine(m, "vol", "b.bin"));
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(m, "other"));
            Shell.Run("cp", "--reflink=always", a, Path.Combine(m, "other", "c.bin"));
            Shell.Run("cp", "--reflink=always", a, Path.Combine(m, "top.bin"));
            Directory.CreateDirectory(Path.Combine(m, "snaps"));
            Shell.Run("btrfs", "subvolume", "snapshot", Path.Combine(m, "vol"), Path.Combine(m, "snaps", "daily"));
            BtrfsProgs.Sync(m);
            long address = Filefrag.Extents(a)[0].Physical;
            return (a, address);
        }

        private static List<BtrfsExtentOwner> Owners(string script, params (string, object?)[] vars)
        {
            PwshResult r = Pwsh.Run(script, vars);
            Assert.Empty(r.Errors);
            Assert.Empty(r.Warnings);
            return r.Objects<BtrfsExtentOwner>();
        }

        [SkippableFact]
        public void EveryOwnerInEverySubvolumeIsListedAsBtrfsProgsSeesIt()
        {
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            string m = x.MountPoint;
            (string a, long address) = Tree(m);

            List<BtrfsExtentOwner> owners = Owners("Get-BtrfsExtentOwner -LiteralPath $a -Detailed", ("a", a));

            // The references: exactly logical-resolve's (inode, offset, root) triples.
            List<(long, long, long)> refs = BtrfsProgs.LogicalResolve(address, m);
            Assert.Equal(6, refs.Count);
            Assert.Equal(refs.OrderBy(t => t), owners.Select(o => (o.Inode, o.FileOffset, o.SubvolumeId)).Distinct().OrderBy(t => t));
            Assert.All(owners, o => Assert.Equal(address, o.DiskAddress));

            // Subvolume paths as `btrfs subvolume list` names them; every name of every inode, as inode-resolve gives it.
            Dictionary<long, string> subvolumes = BtrfsProgs.Subvolumes(m);
            var expected = new List<string>();
            foreach ((long inode, _, long root) in refs)
            {
                string dir = root == 5 ? m : Path.Combine(m, subvolumes[root]);
                expected.AddRange(BtrfsProgs.InodeResolve(inode, dir));
            }

            Assert.Equal(expected.OrderBy(p => p, StringComparer.Ordinal), owners.Select(o => o.Path!).OrderBy(p => p, StringComparer.Ordinal));
            Assert.Equal(
                new[] { "other/c.bin", "snaps/daily/a-link.bin", "snaps/daily/a.bin", "snaps/daily/b.bin", "top.bin", "vol/a-link.bin", "vol/a.bin", "vol/b.bin" },
                owners.Select(o => Path.GetRelativePath(m, o.Path!)).OrderBy(p => p, StringComparer.Ordinal));
            Assert.All(owners, o => Assert.Equal(o.SubvolumeId == 5 ? "/" : "/" + subvolumes[o.SubvolumeId], o.SubvolumePath));
            Assert.All(owners, o => Assert.Equal((long)BtrfsProgs.Inode(o.Path!), o.Inode));

            // The same from the pipeline (FIEMAP extents, exact items) and by address.
            Assert.Equal(owners.Count, Owners("Get-BtrfsExtent -LiteralPath $a | Where-Object IsShared | Get-BtrfsExtentOwner -Detailed", ("a", a)).Count);
            Assert.Equal(owners.Count, Owners("Get-BtrfsExtent -LiteralPath $a -Exact | Get-BtrfsExtentOwner -Detailed", ("a", a)).Count);
            Assert.Equal(owners.Select(o => o.Path), Owners("Get-BtrfsExtentOwner -LiteralPath $m -Detailed -DiskAddress $d", ("m", m), ("d", address)).Select(o => o.Path));

            // By address, each owning file with the extent's size on disk, as by path (before: 0 B; a newcomer review),
            // also from an address inside the extent.
            PwshResult byPath = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $a", ("a", a));
            long size = Assert.Single(byPath.Objects<BtrfsOwningFile>().Select(o => o.ExtentBytes).Distinct());
            Assert.Equal(size, Shell.Run("btrfs", "inspect-internal", "dump-tree", "-t", "extent", Shell.Run("findmnt", "-no", "SOURCE", m).Trim()).Split('\n').Where(l => l.Contains($"key ({address} EXTENT_ITEM ", StringComparison.Ordinal)).Select(l => long.Parse(l.Split("EXTENT_ITEM ")[1].Split(')')[0], System.Globalization.CultureInfo.InvariantCulture)).Single());
            foreach (long at in new[] { address, address + 4096 })
            {
                PwshResult byAddress = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $m -DiskAddress $d", ("m", m), ("d", at));
                Assert.Empty(byAddress.Errors);
                Assert.All(byAddress.Objects<BtrfsOwningFile>(), o => Assert.Equal(size, o.ExtentBytes));
            }
        }

        [SkippableFact]
        public void DataWrittenSinceTheLastCommitIsFoundToo()
        {
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            BtrfsProgs.Sync(x.MountPoint);
            string a = Path.Combine(x.MountPoint, "fresh.bin"), b = Path.Combine(x.MountPoint, "fresh-copy.bin");
            FileBuilder.WriteNew(a, FileBuilder.RandomBytes(1 << 20, 34)); // fsynced: in the log tree, not committed
            Shell.Run("cp", "--reflink=always", a, b);
            long address = Filefrag.Extents(a)[0].Physical;

            // The extent tree has no item for the extent until the transaction commits.
            Shell.Result before = Shell.Try("btrfs", "inspect-internal", "logical-resolve", "-P", "-o", address.ToString(System.Globalization.CultureInfo.InvariantCulture), x.MountPoint);
            Assert.True(before.ExitCode != 0 || before.StdOut.Trim().Length == 0, "the extent was already committed: " + before.StdOut);

            List<BtrfsExtentOwner> owners = Owners("Get-BtrfsExtentOwner -LiteralPath $a -Detailed", ("a", a));
            Assert.Equal(new[] { b, a }, owners.Select(o => o.Path!).OrderBy(p => p, StringComparer.Ordinal));
        }

        [SkippableFact]
        public void AnExtentPipedInManyPiecesIsLookedUpOnce()
        {
            // One extent cloned 60 times into one file: Get-BtrfsExtent gives 60 pieces, and each piece piped on asked for
            // the extent's references (and their paths) again: quadratic, 18 s for 4,000 pieces and more than 10 minutes
            // for 30,000 (a hostile test). Counted, not timed: the LOGICAL_INO calls the kernel sees (strace).
            Requires.That(Shell.Try("strace", "-V").ExitCode == 0, "strace is not installed (.ci/run installs it)");
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            string block = Path.Combine(x.MountPoint, "block"), many = Path.Combine(x.MountPoint, "many.img");
            FileBuilder.WriteNew(block, FileBuilder.RandomBytes(4096, 38));
            BtrfsProgs.Sync(x.MountPoint);
            Shell.Run("xfs_io", new[] { "-f" }.Concat(Enumerable.Range(0, 60).SelectMany(i => new[] { "-c", $"reflink {block} 0 {i * 8192} 4096" })).Append(many).ToArray());
            BtrfsProgs.Sync(x.MountPoint);
            string log = Path.Combine(x.MountPoint, "strace.log");
            RealPwsh.Result r = RealPwsh.RunWrapped(
                "$p = @(Get-BtrfsExtent -LiteralPath $F); '@@pieces ' + $p.Count; $o = @($p | Get-BtrfsExtentOwner | Where-Object Path -eq $F); '@@refs ' + $o[0].References",
                new[] { "strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=ioctl", "-o", log, "--" },
                ("F", many));
            Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
            Assert.Equal(new[] { "pieces 60", "refs 60" }, r.Marked);
            int lookups = File.ReadLines(log).Count(l => l.Contains("BTRFS_IOC_LOGICAL_INO", StringComparison.Ordinal) || l.Contains("0x94, 0x3b", StringComparison.Ordinal)); // by name, or as an strace that cannot name it prints it
            Assert.InRange(lookups, 1, 3); // once (a larger buffer, or a commit and again, at most)
        }

        [SkippableFact]
        public void AFileBeingWrittenIsAnsweredForAsItIsNow()
        {
            // A VM's image written all the while: an extent its items named was freed (rewritten) or not committed yet by
            // the time its references were asked for. Before: ExtentNotFound, about a -DiskAddress nobody gave, in 8 to 10
            // of 60 runs; now the extents the file has there now are looked up instead. Found by a hostile test.
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            string live = Path.Combine(x.MountPoint, "live.img");
            FileBuilder.WriteNew(live, FileBuilder.RandomBytes(10 << 20, 35));
            BtrfsProgs.Sync(x.MountPoint);
            PwshResult r;
            using (ChildProcess.Start("python3", "-c", "import os,sys,time\nfd=os.open(sys.argv[1],os.O_WRONLY)\nprint('ready',flush=True)\nend=time.time()+60\ni=0\nwhile time.time()<end:\n  os.pwrite(fd,os.urandom(65536),(i%160)*65536); i+=1\n  if i%20==0: os.fsync(fd)", live))
            {
                r = Pwsh.Run("1..40 | ForEach-Object { Get-BtrfsExtentOwner -LiteralPath $f | Where-Object Path -eq $f | ForEach-Object References }", ("f", live));
            }

            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors.Select(e => e.FullyQualifiedErrorId + ": " + e.Exception.Message)));
            Assert.Equal(40, r.Output.Count);
            Assert.All(r.Output, o => Assert.True(Convert.ToInt64(o.BaseObject, System.Globalization.CultureInfo.InvariantCulture) > 0));
        }

        [SkippableFact]
        public void DataNotYetWrittenBackIsFoundToo()
        {
            // Before: a file just written (its data in the page cache, delayed allocation: no extent yet) was said to
            // hold "a hole, inline data, or beyond the end of the file" (ExtentNotFound). Found by a hostile test.
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            string a = Path.Combine(x.MountPoint, "unwritten.bin");
            Shell.Run("sh", "-c", $"head -c 300000 /dev/urandom > '{a}'");
            Assert.Contains("delalloc", Shell.Run("filefrag", "-v", a), StringComparison.Ordinal);

            List<BtrfsExtentOwner> owners = Owners("Get-BtrfsExtentOwner -LiteralPath $a -Detailed", ("a", a));
            Assert.Equal(new[] { a }, owners.Select(o => o.Path!).Distinct());
            Assert.Equal(Filefrag.Extents(a).Select(e => e.Physical).Distinct().Count(), owners.Select(o => o.DiskAddress).Distinct().Count());

            // A file synced before and then written further (its fsync is the fast kind then, which may return before the
            // new extents' items are in the tree: a review): the new part is found too.
            string grown = Path.Combine(x.MountPoint, "grown.bin");
            FileBuilder.WriteNew(grown, FileBuilder.RandomBytes(1 << 20, 35));
            Shell.Run("sh", "-c", $"head -c 300000 /dev/urandom >> '{grown}'");
            owners = Owners("Get-BtrfsExtentOwner -LiteralPath $a -Offset 1048576 -Length 300000 -Detailed", ("a", grown));
            Assert.Equal(new[] { grown }, owners.Select(o => o.Path!).Distinct());

            // A file with an extent on disk and data beside it not yet written back: both are found (a hostile test: only
            // the first was, without a word).
            string mixed = Path.Combine(x.MountPoint, "mixed.bin");
            FileBuilder.WriteNew(mixed, FileBuilder.RandomBytes(64 << 10, 36));
            Shell.Run("sync");
            Shell.Run("python3", "-c", $"import os; f=os.open('{mixed}',os.O_WRONLY); os.pwrite(f,os.urandom(1<<20),1<<20)");
            Assert.Contains("delalloc", Shell.Run("filefrag", "-v", mixed), StringComparison.Ordinal);
            owners = Owners("Get-BtrfsExtentOwner -LiteralPath $a -Detailed", ("a", mixed));
            Assert.Equal(2, owners.Select(o => o.DiskAddress).Distinct().Count());

            // A hole is still said to be one (the file is synced, and still nothing is there), and inline data is said to
            // be inline, without a sync (a review: it was said to be not on disk yet).
            string sparse = Path.Combine(x.MountPoint, "sparse.bin"), small = Path.Combine(x.MountPoint, "small.txt");
            Shell.Run("truncate", "-s", "1M", sparse);
            Shell.Run("sh", "-c", $"echo hi > '{small}' && sync");
            Assert.Contains("inline", Shell.Run("filefrag", "-v", small), StringComparison.Ordinal);
            PwshResult r = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $a; Get-BtrfsExtentOwner -LiteralPath $b", ("a", sparse), ("b", small));
            Assert.Equal(2, r.Errors.Count);
            Assert.All(r.Errors, e => Assert.Contains("has no data extent: its data is inline (a small file's data lives in the metadata), or all holes", e.Exception.Message, StringComparison.Ordinal));
        }

        [SkippableFact]
        public void FileOffsetIsWhereTheReferenceStartsInTheOwningFile()
        {
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            string src = Path.Combine(x.MountPoint, "src.bin"), dst = Path.Combine(x.MountPoint, "dst.bin");
            FileBuilder.Chunks(src, 2, 256 << 10, 256 << 10);
            FileBuilder.WriteNew(dst, FileBuilder.RandomBytes(1 << 20, 32));

            // The second extent of src is cloned to 512 KiB in dst; the first is src's alone.
            Shell.Run("xfs_io", "-c", $"reflink {src} {256 << 10} {512 << 10} {256 << 10}", dst);
            BtrfsProgs.Sync(x.MountPoint);

            List<BtrfsExtentOwner> second = Owners("Get-BtrfsExtentOwner -LiteralPath $s -Detailed -Offset 300KB", ("s", src));
            Assert.Equal(new[] { (dst, 512L << 10), (src, 256L << 10) }, second.Select(o => (o.Path!, o.FileOffset)).OrderBy(t => t.Item1, StringComparer.Ordinal));
            Assert.Equal(src, Assert.Single(Owners("Get-BtrfsExtentOwner -LiteralPath $s -Detailed -Offset 0", ("s", src))).Path);

            // Without -Offset and -Length: the whole file, by path as by a FileInfo piped in (its Length binds the size).
            // Before: only the first item, by path, and every extent by FileInfo.
            Assert.Equal(3, Owners("Get-BtrfsExtentOwner -LiteralPath $s -Detailed", ("s", src)).Count);
            Assert.Equal(3, Owners("Get-Item -LiteralPath $s | Get-BtrfsExtentOwner -Detailed", ("s", src)).Count);

            // A path piped as text (a string's Length is its number of characters) and a list read from a file: the
            // whole file too, as with -Offset given (the string's Length is no range). Before: only the first
            // (path length) bytes, so the second extent's owner (dst) was left out. Found by a hostile review.
            Assert.Equal(3, Owners("$s | Get-BtrfsExtentOwner -Detailed", ("s", src)).Count);
            string list = Path.Combine(x.MountPoint, "list.txt");
            File.WriteAllText(list, src + "\n");
            Assert.Equal(3, Owners("Get-Content -LiteralPath $l | Get-BtrfsExtentOwner -Detailed", ("l", list)).Count);
            Assert.Equal(dst, Owners("$s | Get-BtrfsExtentOwner -Detailed -Offset 300KB", ("s", src)).Select(o => o.Path).Order(StringComparer.Ordinal).First());

            // An empty file with an extent preallocated past its end (fallocate -k): a FileInfo's Length 0 bound and
            // failed (ParameterArgumentValidationError); it is the whole file, as by path.
            string empty = Path.Combine(x.MountPoint, "empty.bin");
            FileBuilder.WriteNew(empty, Array.Empty<byte>());
            Shell.Run("fallocate", "-n", "-l", "1M", empty);
            BtrfsProgs.Sync(x.MountPoint);
            Assert.Equal(Owners("Get-BtrfsExtentOwner -LiteralPath $e -Detailed", ("e", empty)).Select(o => o.DiskAddress), Owners("Get-Item -LiteralPath $e | Get-BtrfsExtentOwner -Detailed", ("e", empty)).Select(o => o.DiskAddress));
            Assert.Equal("LengthOutOfRange", Assert.Single(Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $e -Length 0", ("e", empty)).ErrorIds));

            // A script block for -Length (evaluated per piped object) is a range too (a review caught it refused at the start).
            Assert.Equal(3, Owners("$s | Get-BtrfsExtentOwner -Detailed -Length { 512KB }", ("s", src)).Count);
            Assert.Single(Owners("$s | Get-BtrfsExtentOwner -Detailed -Length { 4KB }", ("s", src)));

            // A range over both extents: each extent's owners once.
            Assert.Equal(3, Owners("Get-BtrfsExtentOwner -LiteralPath $s -Detailed -Length 512KB", ("s", src)).Count);

            // Far into a file: the 256 MiB preallocated extent at 1 GiB (the largest btrfs makes: written ones are at most
            // 128 MiB) is found from its last MiB, the 4 KiB written before it not from there, and the one after it from
            // its own offset only; by an address 200 MiB into it, it is named by its start. The search starts at the
            // nearest item before the offset (before: always at 0, so extents piped in one by one cost the square of
            // their number; then, for a while, at most 128 MiB before it, which missed this one: a review).
            using ExtraFileSystem big = fs.NewFileSystem("btrfs", "3G"); // data chunks of 256 MiB or more hold it whole
            string far = Path.Combine(big.MountPoint, "far.bin");
            Shell.Run("python3", "-c", "import os,sys\nfd=os.open(sys.argv[1],os.O_CREAT|os.O_WRONLY,0o644)\nos.pwrite(fd,os.urandom(4096),(1<<30)-4096)\nos.posix_fallocate(fd,1<<30,256<<20)\nos.pwrite(fd,os.urandom(4096),(1<<30)+(256<<20))\nos.fsync(fd)", far);
            BtrfsProgs.Sync(big.MountPoint);
            List<BtrfsExtentItem> items = Pwsh.Run("Get-BtrfsExtent -LiteralPath $f -Exact", ("f", far)).Objects<BtrfsExtentItem>().Where(i => i.DiskAddress != 0).ToList();
            Assert.Equal(new[] { (1L << 30) - 4096, 1L << 30, (1L << 30) + (256L << 20) }, items.Select(i => i.LogicalOffset));
            Assert.Equal(256L << 20, items[1].Length);
            foreach ((long offset, long length, long expected) in new[] { ((1L << 30) + (255L << 20), 1L, items[1].DiskAddress), ((1L << 30) - 1, 1L, items[0].DiskAddress), ((1L << 30) + (256L << 20) + 100, 1L, items[2].DiskAddress) })
            {
                List<BtrfsExtentOwner> found = Owners("Get-BtrfsExtentOwner -LiteralPath $f -Detailed -Offset $o -Length $l", ("f", far), ("o", offset), ("l", length));
                Assert.Equal(expected, Assert.Single(found).DiskAddress);
            }

            Assert.Equal(items[1].DiskAddress, Assert.Single(Owners("Get-BtrfsExtentOwner -LiteralPath $m -Detailed -DiskAddress $a", ("m", big.MountPoint), ("a", items[1].DiskAddress + (200L << 20)))).DiskAddress);
            Assert.Equal(items.Select(i => i.DiskAddress), Owners("Get-BtrfsExtent -LiteralPath $f -Exact | Where-Object DiskAddress | Get-BtrfsExtentOwner -Detailed", ("f", far)).Select(o => o.DiskAddress));
        }

        /// <summary>A 4 KiB block (block.bin) on <paramref name="x"/> cloned <paramref name="count"/> times into many.bin, 8 KiB apart: one extent with count + 1 references.</summary>
        private static (string Block, string Many) BlockClonedInto(ExtraFileSystem x, int count, int seed)
        {
            string block = Path.Combine(x.MountPoint, "block.bin"), many = Path.Combine(x.MountPoint, "many.bin");
            FileBuilder.WriteNew(block, FileBuilder.RandomBytes(4096, seed));
            Shell.Run("touch", many);
            Shell.Run("xfs_io", Enumerable.Range(0, count).SelectMany(i => new[] { "-c", $"reflink {block} 0 {i * 8192} 4096" }).Append(many).ToArray());
            return (block, many);
        }

        [SkippableFact]
        public void AnExtentWithThousandsOfReferencesIsListedWhole()
        {
            // 3,000 references (more than LOGICAL_INO's first 64 KiB answer holds) of one 4 KiB extent.
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            (string src, string dst) = BlockClonedInto(x, 3000, seed: 33);

            BtrfsProgs.Sync(x.MountPoint);
            List<BtrfsExtentOwner> owners = Owners("Get-BtrfsExtentOwner -LiteralPath $s -Detailed", ("s", src));
            Assert.Equal(3001, owners.Count);
            Assert.Equal(Enumerable.Range(0, 3000).Select(i => (long)i * 8192), owners.Where(o => o.Path == dst).Select(o => o.FileOffset).OrderBy(o => o));

            // A stop is heard between the references of one extent (a hostile review: Ctrl+C during an extent with
            // 400,000 references came back only when all were named, 6-8 s later).
            using OpenFile anchor = OpenFile.Open(x.MountPoint, OpenOptions.AllowDirectory);
            using var resolver = new ExtentOwners(anchor);
            ulong address = (ulong)owners[0].DiskAddress;
            Assert.Equal(3001, resolver.Find(address).Owners.Count);
            using var stopped = new System.Threading.CancellationTokenSource();
            stopped.Cancel();
            Assert.Throws<OperationCanceledException>(() => resolver.Find(address, stopped.Token));
        }

        [SkippableFact]
        public void OwnersInSubvolumesNotMountedHaveNoPathAndAWarning()
        {
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            (_, long address) = Tree(x.MountPoint);
            x.MountOnlySubvolume("vol");
            string a = Path.Combine(x.MountPoint, "a.bin");

            PwshResult r = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $a -Detailed", ("a", a));
            Assert.Empty(r.Errors);
            List<BtrfsExtentOwner> owners = r.Objects<BtrfsExtentOwner>();
            Assert.Equal(6, owners.Select(o => (o.Inode, o.SubvolumeId)).Distinct().Count());
            Assert.Equal(
                new[] { "a-link.bin", "a.bin", "b.bin" },
                owners.Where(o => o.Path is not null).Select(o => Path.GetRelativePath(x.MountPoint, o.Path!)).OrderBy(p => p, StringComparer.Ordinal));
            Assert.Equal(new[] { "/", "/other", "/snaps/daily", "/snaps/daily" }, owners.Where(o => o.Path is null).Select(o => o.SubvolumePath!).OrderBy(p => p, StringComparer.Ordinal));
            Assert.Equal(3, r.Warnings.Count); // one per unreachable subvolume
            Assert.Contains(r.Warnings, w => w.Message.Contains("'/snaps/daily'", StringComparison.Ordinal) && w.Message.Contains("not reachable", StringComparison.Ordinal));
        }

        [SkippableFact]
        public void AnOwnerWhoseNameIsNotUtf8HasNoPathAndAWarningNeverTheNameOfAnotherFile()
        {
            // A hostile test: the kernel's names were decoded with U+FFFD for each bad byte, so 'clone\xff' and
            // 'clone\xc3' both came out as 'clone\uFFFD', the name of an unrelated real file, which piped on to
            // Test-NoCow or ConvertTo-NoCow reached that file. Likewise a subvolume named so.
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            string m = x.MountPoint;
            string src = Path.Combine(m, "src");
            FileBuilder.WriteNew(src, FileBuilder.RandomBytes(64 << 10, 7));
            Shell.Run("bash", "-c", "cd \"$1\" && cp --reflink=always src $'clone\\xff' && cp --reflink=always src $'clone\\xc3' && echo different > $'clone\\xef\\xbf\\xbd' && btrfs -q subvolume create $'sub\\xff' && cp --reflink=always src $'sub\\xff/inside' && mkdir $'sub\\xef\\xbf\\xbd' && echo decoy > $'sub\\xef\\xbf\\xbd/inside'", "_", m);
            BtrfsProgs.Sync(m);
            string decoy = Path.Combine(m, "clone\uFFFD");
            Assert.True(File.Exists(decoy));

            PwshResult r = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $a -Detailed", ("a", src));
            Assert.Empty(r.Errors);
            List<BtrfsExtentOwner> owners = r.Objects<BtrfsExtentOwner>();
            Assert.Equal(4, owners.Select(o => (o.Inode, o.SubvolumeId)).Distinct().Count());
            Assert.Equal(new[] { src }, owners.Where(o => o.Path is not null).Select(o => o.Path!));
            Assert.Equal(3, owners.Count(o => o.Path is null));
            Assert.Single(owners, o => o.Path is null && o.SubvolumePath == "/sub\uFFFD"); // shown so, and said: no path is made of it
            Assert.Contains(r.Warnings, w => w.Message.Contains("'clone\\xff'", StringComparison.Ordinal) && w.Message.Contains("not valid UTF-8", StringComparison.Ordinal));
            Assert.Contains(r.Warnings, w => w.Message.Contains("'clone\\xc3'", StringComparison.Ordinal) && w.Message.Contains("not valid UTF-8", StringComparison.Ordinal));
            Assert.Contains(r.Warnings, w => w.Message.Contains("('/sub\uFFFD'), or a directory's on the way to it, is not valid UTF-8", StringComparison.Ordinal));

            // Each says why it has no path, and so does its group's header (before: "not reachable under a mount", for a
            // subvolume that was mounted; a hostile review).
            Assert.Equal(2, owners.Count(o => o.WhyNoPath == "its name is not valid UTF-8"));
            Assert.Single(owners, o => o.WhyNoPath == "its subvolume's name is not valid UTF-8");
            Assert.Null(owners.Single(o => o.Path == src).WhyNoPath);
            PwshResult grouped = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $a | Where-Object { -not $_.Path } | ForEach-Object Directory", ("a", src));
            Assert.Contains("(subvolume 5 /: its name is not valid UTF-8)", grouped.Output.Select(o => o.ToString()));

            // Piped on, nothing reaches the decoy (an owner without a path binds to nothing).
            PwshResult piped = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $a | Where-Object Path | ForEach-Object Path", ("a", src));
            Assert.DoesNotContain(decoy, piped.Output.Select(o => o.ToString()));

            // Piped on to a cmdlet that takes paths, one without a path is this module's own error, each (before: the
            // binder's "The argument is null or empty", from its null PSPath; a hostile review).
            PwshResult bound = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $a -WarningAction SilentlyContinue | Where-Object { -not $_.Path } | Get-BtrfsExtent", ("a", src));
            Assert.Empty(bound.Output);
            Assert.Equal(3, bound.Errors.Count);
            Assert.All(bound.Errors, e => Assert.Equal("ObjectNamesNoFile,Btrfs.Commands.GetBtrfsExtentCommand", e.FullyQualifiedErrorId));
        }

        [SkippableFact]
        public void OwnersInASubvolumeReachedOnlyThroughABindMountOfItsDirectoryAreNamedThere()
        {
            // Before: with only a directory of the subvolume mounted (a bind mount, as a container volume), no owner had a
            // path, not even the file just opened through that mount (a hostile review).
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            string acc = Path.Combine(x.MountPoint, "acc");
            Shell.Run("btrfs", "subvolume", "create", acc);
            Directory.CreateDirectory(Path.Combine(acc, "sub"));
            FileBuilder.WriteNew(Path.Combine(acc, "f"), FileBuilder.RandomBytes(64 << 10, 51));
            Shell.Run("ln", Path.Combine(acc, "f"), Path.Combine(acc, "sub", "f-link"));
            FileBuilder.WriteNew(Path.Combine(acc, "g"), FileBuilder.RandomBytes(64 << 10, 52));
            Shell.Run("cp", "--reflink=always", Path.Combine(acc, "g"), Path.Combine(acc, "sub", "g-copy"));
            Directory.CreateDirectory(Path.Combine(acc, "vol 2"));
            FileBuilder.WriteNew(Path.Combine(acc, "vol 2", "h"), FileBuilder.RandomBytes(64 << 10, 53));
            Shell.Run("cp", "--reflink=always", Path.Combine(acc, "vol 2", "h"), Path.Combine(acc, "sub", "h-copy"));
            BtrfsProgs.Sync(x.MountPoint);
            x.MountOnlySubvolume("acc");
            string bind = fs.NewDirectory(TestFs.Btrfs, "owner-bind"), bind2 = fs.NewDirectory(TestFs.Btrfs, "owner-bind-2");
            Shell.Run("mount", "--bind", Path.Combine(x.MountPoint, "sub"), bind);
            Shell.Run("mount", "--bind", Path.Combine(x.MountPoint, "vol 2"), bind2);
            try
            {
                Shell.Run("umount", x.MountPoint);

                // Two directories mounted: each name through the mount that holds it (before: only the first mount's).
                PwshResult two = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $f -Detailed", ("f", Path.Combine(bind, "h-copy")));
                Assert.Empty(two.Errors);
                Assert.Empty(two.Warnings);
                Assert.Equal(new[] { Path.Combine(bind, "h-copy"), Path.Combine(bind2, "h") }.Order(StringComparer.Ordinal), two.Objects<BtrfsExtentOwner>().Select(o => o.Path!).Order(StringComparer.Ordinal));

                PwshResult linked = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $f -Detailed", ("f", Path.Combine(bind, "f-link")));
                Assert.Empty(linked.Errors);
                Assert.Empty(linked.Warnings);
                Assert.Equal(Path.Combine(bind, "f-link"), Assert.Single(linked.Objects<BtrfsExtentOwner>()).Path);

                PwshResult copied = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $f -Detailed", ("f", Path.Combine(bind, "g-copy")));
                Assert.Empty(copied.Errors);
                List<BtrfsExtentOwner> owners = copied.Objects<BtrfsExtentOwner>();
                Assert.Equal(new[] { Path.Combine(bind, "g-copy"), null }, owners.Select(o => o.Path).OrderBy(p => p is null));
                Assert.Contains("reachable only through", Assert.Single(copied.Warnings).Message, StringComparison.Ordinal);
            }
            finally
            {
                Shell.Try("umount", bind);
                Shell.Try("umount", bind2);
            }
        }

        [SkippableFact]
        public void HolesOtherFileSystemsFreeAddressesAndUsersWithoutCapSysAdminAreErrors()
        {
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            string sparse = Path.Combine(x.MountPoint, "sparse.img");
            FileBuilder.Chunks(sparse, 2, 64 << 10, 1 << 20);
            string xfs = Path.Combine(fs.NewDirectory(TestFs.Xfs, "owner"), "f.bin");
            FileBuilder.WriteNew(xfs, FileBuilder.RandomBytes(64 << 10, 1));
            BtrfsProgs.Sync(x.MountPoint);

            PwshResult r = Pwsh.Run(
                "Get-BtrfsExtentOwner -LiteralPath $s -Detailed -Offset 512KB; Get-BtrfsExtentOwner -LiteralPath $x -Detailed; Get-BtrfsExtentOwner -LiteralPath $m -Detailed -DiskAddress 4096; Get-BtrfsExtentOwner -LiteralPath $s -Detailed -Offset 0",
                ("s", sparse),
                ("x", xfs),
                ("m", x.MountPoint));
            Assert.Equal(new[] { "ExtentNotFound", "OperationNotSupported", "ExtentNotFound" }, r.ErrorIds);
            Assert.Equal(new object[] { sparse, xfs, x.MountPoint }, r.Errors.Select(e => e.TargetObject));
            Assert.All(new[] { r.Errors[0], r.Errors[2] }, e => Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category));
            Assert.Contains("hole", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Equal(sparse, Assert.Single(r.Objects<BtrfsExtentOwner>()).Path);

            // Its extents piped with its holes: the holes are said (-Verbose), not errors, and the extents are answered. Before:
            // one ExtentNotFound per hole.
            PwshResult holes = Pwsh.Run("Get-BtrfsExtent -LiteralPath $s -IncludeHole | Get-BtrfsExtentOwner -Verbose", ("s", sparse));
            Assert.Empty(holes.Errors);
            BtrfsOwningFile holey = Assert.Single(holes.Objects<BtrfsOwningFile>());
            Assert.Equal((sparse, 2L), (holey.Path, holey.Extents));
            Assert.Contains(holes.Verbose, v => v.Message.Contains($"bytes {64 << 10} to {(1 << 20) - 1} are a hole (no data extent): nothing owns them", StringComparison.Ordinal));

            // A whole file without a data extent (empty; inline) is said as the file's, not as "at offset 0" (before; a
            // hostile review).
            string empty = Path.Combine(x.MountPoint, "empty"), tiny = Path.Combine(x.MountPoint, "tiny");
            FileBuilder.WriteNew(empty, Array.Empty<byte>());
            FileBuilder.WriteNew(tiny, new byte[] { 1, 2, 3 });
            BtrfsProgs.Sync(x.MountPoint);
            PwshResult whole = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $e, $t", ("e", empty), ("t", tiny));
            Assert.Equal(new[] { "ExtentNotFound", "ExtentNotFound" }, whole.ErrorIds);
            Assert.Contains($"'{empty}' is empty: it has no data extent", whole.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Contains($"'{tiny}' has no data extent: its data is inline", whole.Errors[1].Exception.Message, StringComparison.Ordinal);
            Assert.All(whole.Errors, e => Assert.DoesNotContain("offset 0", e.Exception.Message, StringComparison.Ordinal));

            // The extents of an xfs file piped in: its refusal once for the file, not once per extent (before: one identical
            // error per extent); another file in between is refused again. Found by a hostile review.
            string frag = Path.Combine(Path.GetDirectoryName(xfs)!, "frag.bin");
            FileBuilder.WrittenInRandomOrder(frag, 4 << 20);
            Assert.True(Filefrag.Extents(frag).Count > 10);
            PwshResult extents = Pwsh.Run("& { Get-BtrfsExtent -LiteralPath $f; Get-BtrfsExtent -LiteralPath $x; Get-BtrfsExtent -LiteralPath $f } | Get-BtrfsExtentOwner", ("f", frag), ("x", xfs));
            Assert.Equal(new[] { "OperationNotSupported", "OperationNotSupported", "OperationNotSupported" }, extents.ErrorIds);
            Assert.Equal(new object[] { frag, xfs, frag }, extents.Errors.Select(e => e.TargetObject));

            // The whole file (no -Offset): both of its data extents, the hole between them passed over.
            Assert.Equal(2, Owners("Get-BtrfsExtentOwner -LiteralPath $s -Detailed", ("s", sparse)).Count);

            PwshResult both = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $s -Detailed -Offset 0 -DiskAddress 4096", ("s", sparse));
            Assert.Equal("DiskAddressWithRange", Assert.Single(both.ErrorIds));

            // Piped extents bring their ranges: the same conflict (before: their ranges ignored, and the address's
            // owners written once per extent piped in; a hostile review).
            long address = Owners("Get-BtrfsExtentOwner -LiteralPath $s -Detailed", ("s", sparse))[0].DiskAddress;
            PwshResult piped = Pwsh.Run("Get-BtrfsExtent -LiteralPath $s | Get-BtrfsExtentOwner -Detailed -DiskAddress $a", ("s", sparse), ("a", address));
            Assert.Equal("DiskAddressWithRange", Assert.Single(piped.ErrorIds));
            Assert.Empty(piped.Output);

            // A file piped in (its Length binds -Length: its size, not a range) only names the filesystem (a review).
            PwshResult item = Pwsh.Run("Get-Item -LiteralPath $s | Get-BtrfsExtentOwner -Detailed -DiskAddress $a", ("s", sparse), ("a", address));
            Assert.Empty(item.Errors);
            Assert.Equal(address, Assert.Single(item.Objects<BtrfsExtentOwner>()).DiskAddress);

            Shell.Run("chmod", "0644", sparse);
            PwshResult user;
            using (Unprivileged.Begin())
            {
                user = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $s, $s -Detailed", ("s", sparse));
            }

            Assert.Empty(user.Output);
            Assert.Empty(user.Warnings);
            Assert.Equal(new[] { "AccessDenied" }, user.ErrorIds); // the kernel refuses it whatever the input: the first refusal stops the command
            Assert.Equal(ErrorCategory.PermissionDenied, user.Errors[0].CategoryInfo.Category);
            Assert.Contains("needs root (CAP_SYS_ADMIN)", user.Errors[0].Exception.Message, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ByDefaultOneRowPerOwningFileNotOnePerReference()
        {
            // Before: one 96 KiB extent of a file written in one piece with 300 reflinked copies gave a
            // row per reference. Now: one row per file, with how many of the range's extents it uses and
            // their size on disk; -Detailed still gives every reference.
            string dir = fs.NewDirectory(TestFs.Btrfs, "owners-grouped");
            string src = Path.Combine(dir, "src.img");
            FileBuilder.WriteNew(src, FileBuilder.RandomBytes(1 << 20, 4)); // one extent
            for (int i = 0; i < 3; i++)
            {
                Shell.Run("cp", "--reflink=always", src, Path.Combine(dir, $"copy{i}.img"));
            }

            // The source references its own extent twice: its second half cloned onto its first.
            Shell.Run("xfs_io", "-c", "reflink " + src + " 0 524288 524288", src);
            BtrfsProgs.Sync(dir);
            PwshResult grouped = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $s -Length 1MB", ("s", src));
            Assert.Empty(grouped.Errors);
            List<BtrfsOwningFile> files = grouped.Objects<BtrfsOwningFile>();
            Assert.Equal(new[] { "copy0.img", "copy1.img", "copy2.img", "src.img" }, files.Select(f => f.Name).Order(StringComparer.Ordinal));
            BtrfsOwningFile self = files.Single(f => f.Name == "src.img");
            Assert.True(self.References > self.Extents, $"{self.References} references of {self.Extents} extents");
            Assert.All(files, f => Assert.True(f.ExtentBytes >= 1 << 20, $"{f.Name}: {f.ExtentBytes}"));
            int references = Owners("Get-BtrfsExtentOwner -LiteralPath $s -Length 1MB -Detailed", ("s", src)).Count;
            Assert.Equal(files.Sum(f => f.References), references);

            // The view fits 120 columns without wrapping the subvolume into the name.
            PwshResult view = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $s -Length 1MB | Out-String -Width 120", ("s", src));
            Assert.All(view.Output.Single().ToString()!.Split('\n'), l => Assert.True(l.TrimEnd().Length <= 120, l));
        }
    
        [SkippableFact]
        public void PiecesOfOneExtentPipedInCountItsReferencesOnceAndAnAddressInsideItNamesItsStart()
        {
            // Before: each piped piece of one extent added the extent's references again (3 references told as 9), and
            // -DiskAddress gave back the address asked, not the extent's. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "owners-pieces");
            string f = Path.Combine(dir, "f.img"), copy = Path.Combine(dir, "copy.img");
            FileBuilder.WriteNew(f, FileBuilder.RandomBytes(2 << 20, 79)); // one extent
            Shell.Run("xfs_io", "-c", "reflink " + f + " 0 512K 256K", "-c", "reflink " + f + " 0 1M 256K", f);
            Shell.Run("cp", "--reflink=always", f, copy);
            BtrfsProgs.Sync(dir);
            Assert.True(Filefrag.Extents(f).Count >= 3, "the clones within the file make pieces");

            List<BtrfsOwningFile> direct = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $f", ("f", f)).Objects<BtrfsOwningFile>();
            foreach (string piped in new[] { "Get-BtrfsExtent -LiteralPath $f | Get-BtrfsExtentOwner", "Get-BtrfsExtent -LiteralPath $f -Exact | Get-BtrfsExtentOwner" })
            {
                PwshResult r = Pwsh.Run(piped, ("f", f));
                Assert.Empty(r.Errors);
                Assert.Equal(
                    direct.Select(o => (o.Name, o.Extents, o.References, o.ExtentBytes)).OrderBy(x => x.Name, StringComparer.Ordinal),
                    r.Objects<BtrfsOwningFile>().Select(o => (o.Name, o.Extents, o.References, o.ExtentBytes)).OrderBy(x => x.Name, StringComparer.Ordinal));
            }

            // As btrfs-progs counts the references of the extent (logical-resolve -o: every item, whatever its offset).
            long physical = Filefrag.Extents(f)[0].Physical;
            string[] resolved = Shell.Run("btrfs", "inspect-internal", "logical-resolve", "-o", physical.ToString(System.Globalization.CultureInfo.InvariantCulture), dir).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(resolved.Count(l => l.EndsWith("/copy.img", StringComparison.Ordinal)), direct.Single(o => o.Name == "copy.img").References);
            Assert.Equal(resolved.Count(l => l.EndsWith("/f.img", StringComparison.Ordinal)), direct.Single(o => o.Name == "f.img").References);
            Assert.Equal(
                Owners("Get-BtrfsExtentOwner -LiteralPath $f -Detailed", ("f", f)).Count,
                Owners("Get-BtrfsExtent -LiteralPath $f | Get-BtrfsExtentOwner -Detailed", ("f", f)).Count);

            // An address inside the extent names the extent by its start, as the lookup by file does.
            long start = Pwsh.Run("Get-BtrfsExtent -LiteralPath $f -Exact", ("f", f)).Objects<BtrfsExtentItem>().First(i => i.DiskAddress > 0).DiskAddress;
            List<BtrfsExtentOwner> inside = Owners("Get-BtrfsExtentOwner -LiteralPath $d -DiskAddress $a -Detailed", ("d", dir), ("a", start + 8192));
            Assert.NotEmpty(inside);
            Assert.All(inside, o => Assert.Equal(start, o.DiskAddress));
        }

        [SkippableFact]
        public void AnInodeWithMoreNamesThanTheKernelGivesIsNamedOnceForAllItsReferences()
        {
            // A hostile review: 40 hard links with names past the kernel's 4 KiB of paths and 262,144 references built a
            // path (and a warning) per name per reference: 3.6 GB and 24 s. Now the inode is named once per extent.
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            (string src, string many) = BlockClonedInto(x, 50, seed: 35);
            for (int k = 0; k < 40; k++)
            {
                Shell.Run("ln", many, Path.Combine(x.MountPoint, $"link-{k:D2}-" + new string('x', 90)));
            }

            BtrfsProgs.Sync(x.MountPoint);
            PwshResult r = Pwsh.Run("Get-BtrfsExtentOwner -LiteralPath $s -Detailed", ("s", src));
            Assert.Empty(r.Errors);
            List<BtrfsExtentOwner> owners = r.Objects<BtrfsExtentOwner>();
            string[] names = owners.Where(o => o.Path != src).Select(o => o.Path!).Distinct().ToArray();
            Assert.InRange(names.Length, 2, 40); // cut: fewer than its 41 names
            Assert.All(names, n => Assert.True(File.Exists(n), n));
            Assert.Equal(50 * names.Length, owners.Count(o => o.Path != src));
            Assert.Single(r.Warnings, w => w.Message.Contains("more hard links than the kernel names", StringComparison.Ordinal)); // once, not once per reference
        }

        [SkippableFact]
        public void TheTableNamesEachDirectoryOnceHoweverItsFilesCameFromTheKernel()
        {
            // Found by a hostile review: the owning files came out in the kernel's order (by inode), so a table grouped
            // by directory showed "Directory: .../snap-rw" twice when its files alternated with another directory's.
            string dir = fs.NewDirectory(TestFs.Btrfs, "owners-dirs");
            string d1 = Directory.CreateDirectory(Path.Combine(dir, "d1")).FullName, d2 = Directory.CreateDirectory(Path.Combine(dir, "d2")).FullName;
            string src = Path.Combine(d1, "a.img");
            FileBuilder.WriteNew(src, FileBuilder.RandomBytes(256 << 10, 91));
            foreach (string copy in new[] { Path.Combine(d2, "b.img"), Path.Combine(d1, "c.img"), Path.Combine(d2, "d.img") })
            {
                Shell.Run("cp", "--reflink=always", src, copy); // inodes made in turn: d2, d1, d2
            }

            BtrfsProgs.Sync(dir);
            PwshResult r = Pwsh.Run("$o = Get-BtrfsExtentOwner -LiteralPath $s; $o; $o | Format-Table | Out-String -Width 120", ("s", src));
            Assert.Empty(r.Errors);
            string[] dirs = r.Output.Select(o => o.BaseObject).OfType<BtrfsOwningFile>().Select(f => Path.GetDirectoryName(f.Path)!).ToArray();
            Assert.Equal(4, dirs.Length);
            Assert.Equal(2, dirs.Distinct().Count());
            Assert.Equal(1, Enumerable.Range(1, 3).Count(i => dirs[i] != dirs[i - 1])); // one run per directory
            string table = r.Output.Select(o => o.BaseObject).OfType<string>().Single();
            Assert.Equal(1, table.Split('\n').Count(l => l.Contains("Directory: " + d1, StringComparison.Ordinal)));
            Assert.Equal(1, table.Split('\n').Count(l => l.Contains("Directory: " + d2, StringComparison.Ordinal)));
        }

        [SkippableFact]
        public void EachPipedExtentIsItsOwnQuestionAndOneFilesAnswersAreOneGrouping()
        {
            // The other cmdlets process a file once per pipeline however many of its extents arrive;
            // here each extent asks about its own range, and the answers for one file's extents are
            // folded into one object per owning file (before: one object per owning file per extent).
            string dir = fs.NewDirectory(TestFs.Btrfs, "owners-piped");
            string src = Path.Combine(dir, "src.img");
            string copy = Path.Combine(dir, "copy.img");
            FileBuilder.Chunks(src, 3, 64 * 1024, 128 * 1024, fsyncEach: true); // three extents, holes between
            Shell.Run("cp", "--reflink=always", src, copy);
            BtrfsProgs.Sync(dir);
            Assert.Equal(3, Filefrag.Extents(src).Count);

            PwshResult piped = Pwsh.Run("Get-BtrfsExtent -LiteralPath $s | Get-BtrfsExtentOwner", ("s", src));
            Assert.Empty(piped.Errors);
            List<BtrfsOwningFile> files = piped.Objects<BtrfsOwningFile>();
            Assert.Equal(new[] { "copy.img", "src.img" }, files.Select(f => f.Name).Order(StringComparer.Ordinal));
            Assert.All(files, f => Assert.Equal(3, f.Extents));
            Assert.Equal(3, Owners("Get-BtrfsExtent -LiteralPath $s | Get-BtrfsExtentOwner -Detailed", ("s", src)).Select(o => o.DiskAddress).Distinct().Count());

            // Two files' extents in turn: one grouping per piped file.
            List<BtrfsOwningFile> two = Pwsh.Run("Get-BtrfsExtent -LiteralPath $s, $c | Get-BtrfsExtentOwner", ("s", src), ("c", copy)).Objects<BtrfsOwningFile>();
            Assert.Equal(4, two.Count);
            Assert.All(two, f => Assert.Equal(3, f.Extents));

            // The exact items too: each binds its own LogicalOffset and Length, never its offset inside the
            // extent (before: an "Offset" alias of ExtentOffset bound to -Offset, and every item asked about offset 0).
            PwshResult items = Pwsh.Run("Get-BtrfsExtent -LiteralPath $s -Exact", ("s", src));
            long[] addresses = items.Objects<BtrfsExtentItem>().Select(i => i.DiskAddress).Order().ToArray();
            Assert.Equal(3, addresses.Length);
            Assert.Equal(addresses, Owners("Get-BtrfsExtent -LiteralPath $s -Exact | Get-BtrfsExtentOwner -Detailed", ("s", src)).Select(o => o.DiskAddress).Distinct().Order().ToArray());
        }
    }
}
