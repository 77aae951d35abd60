namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using System.Threading.Tasks;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>The one tree walker behind every -Recurse, on a real tree with a mount, a subvolume, links, a FIFO and a locked directory.</summary>
    [Collection(FileSystemCollection.Name)]
    public class TreeWalkerTests(LoopFileSystems fs)
    {
        private sealed class Tree : IDisposable
        {
            private readonly TmpfsMount mounted;

            internal Tree(string root)
            {
                Root = root;
                Directory.CreateDirectory(Path.Combine(root, "sub"));
                Directory.CreateDirectory(Path.Combine(root, "locked"));
                Directory.CreateDirectory(Path.Combine(root, "mnt"));
                FileBuilder.WriteNew(Path.Combine(root, "a.img"), new byte[] { 1 });
                FileBuilder.WriteNew(Path.Combine(root, "sub", "b.img"), new byte[] { 2 });
                FileBuilder.WriteNew(Path.Combine(root, "locked", "c.img"), new byte[] { 3 });
                Shell.Run("mkfifo", Path.Combine(root, "fifo"));
                Directory.CreateSymbolicLink(Path.Combine(root, "link-dir"), Path.Combine(root, "sub"));
                File.CreateSymbolicLink(Path.Combine(root, "link-file"), Path.Combine(root, "a.img"));
                Shell.Run("btrfs", "subvolume", "create", Path.Combine(root, "subvol"));
                FileBuilder.WriteNew(Path.Combine(root, "subvol", "s.img"), new byte[] { 4 });
                mounted = TmpfsMount.On(Path.Combine(root, "mnt"));
                FileBuilder.WriteNew(Path.Combine(root, "mnt", "e.img"), new byte[] { 5 });
                File.SetUnixFileMode(Path.Combine(root, "locked"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            internal string Root { get; }

            internal string Rel(string path) => path == Root ? "." : path[(Root.Length + 1)..];

            public void Dispose() => mounted.Dispose();
        }

        private static string[] Shape(Tree t, bool cross) =>
            TreeWalker.Walk(t.Root, cross).Select(e => $"{e.Kind} {t.Rel(e.Path)}").OrderBy(x => x, StringComparer.Ordinal).ToArray();

        [SkippableFact]
        public void ANameThatIsNotUtf8IsOneErrorThatNamesItAndTheWalkGoesOn()
        {
            // Before: decoded with U+FFFD, so its open found nothing and it was passed over as "gone since
            // listed", without a word: a nightly defragmentation never took it and said its pass was complete.
            string root = fs.NewDirectory(TestFs.Btrfs, "walk-names");
            FileBuilder.WriteNew(Path.Combine(root, "ok.img"), new byte[] { 1 });
            Shell.Run("bash", "-c", "cd \"$1\" && : > $'bad\\xff.img' && : > $'caf\\xe9' && : > 'z.img'", "_", root);
            WalkEntry[] all = TreeWalker.Walk(root, false).ToArray();
            Assert.Equal(new[] { "ok.img", "z.img" }, all.Where(e => e.Kind == WalkEntryKind.File).Select(e => Path.GetFileName(e.Path)).Order(StringComparer.Ordinal));
            WalkEntry error = Assert.Single(all, e => e.Kind == WalkEntryKind.Error);
            Assert.Equal((root, FileErrorKind.NameNotUtf8), (error.Path, error.Error!.Kind));
            Assert.Contains("'bad\\xff.img'", error.Error.Message, StringComparison.Ordinal);
            Assert.Contains("'caf\\xe9'", error.Error.Message, StringComparison.Ordinal);

            // Many in one directory: one error that names the first ten and counts the rest (its size stays bounded).
            string many = fs.NewDirectory(TestFs.Btrfs, "walk-names-many");
            Shell.Run("bash", "-c", "cd \"$1\" && for i in $(seq 10 24); do : > \"n$i$(printf '\\xff')\"; done", "_", many);
            WalkEntry manyError = Assert.Single(TreeWalker.Walk(many, false), e => e.Kind == WalkEntryKind.Error);
            Assert.StartsWith($"Skipping 15 names in '{many}'", manyError.Error!.Message, StringComparison.Ordinal);
            Assert.Contains(" and 5 more;", manyError.Error.Message, StringComparison.Ordinal);

            // Through a cmdlet: one non-terminating error with a stable id, the directory as its target, the rest done.
            PwshResult r = Pwsh.Run("Measure-Fragmentation -LiteralPath $d -Recurse", ("d", root));
            Assert.Equal(new[] { "NameNotUtf8" }, r.ErrorIds);
            Assert.Equal(root, r.Errors[0].TargetObject);
            Assert.Equal(ErrorCategory.InvalidData, r.Errors[0].CategoryInfo.Category);
            Assert.Equal(2, r.Objects<FragmentationReport>().Count);
        }

        [SkippableFact]
        public void StaysOnItsFilesystemFollowsNoLinksAndClassifiesWithoutOpening()
        {
            using var t = new Tree(fs.NewDirectory(TestFs.Btrfs, "walk"));
            Task<string[]> walk = Task.Run(() => Shape(t, cross: false));
            Assert.True(walk.Wait(TimeSpan.FromSeconds(60)), "the walk hung (a FIFO was opened?)");
            Assert.Equal(
                new[]
                {
                    "Directory .", "Directory locked", "Directory sub", "File a.img", "File locked/c.img", "File sub/b.img",
                    "Other fifo", "OtherFileSystem mnt", "OtherFileSystem subvol", "SymbolicLink link-dir", "SymbolicLink link-file",
                },
                walk.Result);
        }

        [SkippableFact]
        public void CrossFileSystemEntersMountsAndSubvolumes()
        {
            using var t = new Tree(fs.NewDirectory(TestFs.Btrfs, "walkx"));
            string[] shape = Shape(t, cross: true);
            Assert.Contains("File mnt/e.img", shape);
            Assert.Contains("File subvol/s.img", shape);
            Assert.DoesNotContain(shape, s => s.StartsWith("OtherFileSystem", StringComparison.Ordinal));
        }

        /// <summary>
        /// The listing gives a subvolume's entry its id as the inode number, which an ordinary directory beside it can
        /// have too. Before, the one listed second was taken as met already and passed over with all below it, without
        /// a word: usage and fragmentation undercounted, and New-BtrfsReflink -Recurse made a backup without it (a
        /// hostile review). Here, in subvolume r (id 256), data (inode 257) is listed after the subvolume home (id 257),
        /// and in data the subvolume n1 (id 259) after the directory y (inode 259).
        /// </summary>
        [SkippableFact]
        public void ADirectoryWhoseInodeNumberIsASubvolumesIdBesideItIsWalked()
        {
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "256M");
            string m = own.MountPoint, r = Path.Combine(m, "r");
            string R(string x) => Path.Combine(r, x);
            Shell.Run("btrfs", "subvolume", "create", r);
            Shell.Run("btrfs", "subvolume", "create", R("home"));
            Shell.Run("btrfs", "subvolume", "create", R("vms"));
            Directory.CreateDirectory(R("data"));
            FileBuilder.WriteNew(R("data/file.bin"), FileBuilder.RandomBytes(65536, 1));
            Directory.CreateDirectory(R("data/y"));
            FileBuilder.WriteNew(R("data/y/yf.bin"), FileBuilder.RandomBytes(65536, 2));
            Shell.Run("btrfs", "subvolume", "create", R("data/n1"));
            FileBuilder.WriteNew(R("data/n1/n.bin"), FileBuilder.RandomBytes(65536, 3));
            FileBuilder.WriteNew(R("vms/v.bin"), FileBuilder.RandomBytes(65536, 4));
            FileBuilder.WriteNew(R("top.bin"), FileBuilder.RandomBytes(65536, 5));
            Shell.Run("sync");

            // The collisions this is about: the listing's numbers (d_ino; ls -i shows the inode stat gives).
            string Listed(string dir, string name) => Shell.Run("/usr/bin/python3", "-c", "import os,sys; print([e.inode() for e in os.scandir(sys.argv[1]) if e.name == sys.argv[2]][0])", dir, name).Trim();
            Assert.Equal(("257", "257"), (Listed(r, "home"), Listed(r, "data")));
            Assert.Equal(("259", "259"), (Listed(R("data"), "y"), Listed(R("data"), "n1")));

            string[] Find(params string[] how) => Shell.Run("find", new[] { r }.Concat(how).Concat(new[] { "-type", "f", "-printf", "%P\\n" }).ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToArray();
            string[] Walked(bool cross) => TreeWalker.Walk(r, cross).Where(e => e.Kind == WalkEntryKind.File).Select(e => e.Path[(r.Length + 1)..]).Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(new[] { "data/file.bin", "data/y/yf.bin", "top.bin" }, Find("-xdev"));
            Assert.Equal(Find("-xdev"), Walked(cross: false));
            Assert.Equal(Find(), Walked(cross: true));
            Assert.Contains(TreeWalker.Walk(r, false), e => e.Kind == WalkEntryKind.OtherFileSystem && e.Path == R("data/n1"));

            PwshResult usage = Pwsh.Run("(Measure-BtrfsUsage -LiteralPath $r -Recurse -Summary).Files; (Measure-BtrfsUsage -LiteralPath $r -Recurse -CrossFileSystem -Summary).Files", ("r", r));
            Assert.Empty(usage.Errors);
            Assert.Equal(new object[] { 3, 5 }, usage.Output.Select(o => (object)Convert.ToInt32(o.BaseObject, System.Globalization.CultureInfo.InvariantCulture)));

            // The backup has everything find sees on the subvolume.
            PwshResult copy = Pwsh.Run("New-BtrfsReflink -LiteralPath $r -Destination $d -Recurse -WarningAction SilentlyContinue | Out-Null", ("r", r), ("d", Path.Combine(m, "copy")));
            Assert.Empty(copy.Errors);
            Assert.Equal(Find("-xdev"), Shell.Run("find", Path.Combine(m, "copy"), "-type", "f", "-printf", "%P\\n").Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        }

        [SkippableFact]
        public void AnUnreadableDirectoryIsOneErrorAndTheWalkGoesOn()
        {
            using var t = new Tree(fs.NewDirectory(TestFs.Btrfs, "walkperm"));
            string[] shape;
            using (FsUid.Become(FsUid.Nobody))
            {
                shape = Shape(t, cross: false);
            }

            Assert.Contains("Error locked", shape);
            Assert.DoesNotContain("Directory locked", shape);
            Assert.DoesNotContain("File locked/c.img", shape);
            Assert.Contains("File sub/b.img", shape); // the rest of the tree was walked
            WalkEntry err;
            using (FsUid.Become(FsUid.Nobody))
            {
                err = TreeWalker.Walk(t.Root).Single(e => e.Kind == WalkEntryKind.Error);
            }

            Assert.Equal(FileErrorKind.AccessDenied, err.Error!.Kind);
            Assert.Contains("Permission denied", err.Error.Message, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void AFileRootYieldsItselfAndAMissingRootIsAnError()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "walkfile");
            string file = Path.Combine(dir, "x.img");
            FileBuilder.WriteNew(file, new byte[] { 1 });
            Assert.Equal(new[] { (file, WalkEntryKind.File) }, TreeWalker.Walk(file).Select(e => (e.Path, e.Kind)).ToArray());
            WalkEntry missing = Assert.Single(TreeWalker.Walk(Path.Combine(dir, "nope")));
            Assert.Equal((WalkEntryKind.Error, FileErrorKind.NotFound), (missing.Kind, missing.Error!.Kind));
        }

        [SkippableFact]
        public void RecursiveCmdletsWriteOneErrorPerUnreadableDirectoryAndGoOn()
        {
            using var t = new Tree(fs.NewDirectory(TestFs.Btrfs, "walkcmd"));
            Shell.Run("chown", "-R", "-h", "nobody", t.Root);
            Shell.Run("chown", "root", Path.Combine(t.Root, "locked"));
            PwshResult r;
            using (FsUid.Become(FsUid.Nobody))
            {
                r = Pwsh.Run("Set-NoCow -LiteralPath $p -Recurse", ("p", t.Root));
            }

            Assert.Equal(new[] { "AccessDenied" }, r.ErrorIds);
            Assert.Equal(Path.Combine(t.Root, "locked"), r.Errors[0].TargetObject);
            Assert.True(FileFacts.HasNoCow(Path.Combine(t.Root, "sub")));
            Assert.False(FileFacts.HasNoCow(Path.Combine(t.Root, "subvol"))); // another subvolume: not entered
        }

        [Fact]
        public void SlashesAloneNameTheRoot()
        {
            // Before: "//" was trimmed to "" and the walk reported an error about ''.
            WalkEntry first = TreeWalker.Walk("//").First(); // lazily: only the starting point
            Assert.Equal(("/", WalkEntryKind.Directory), (first.Path, first.Kind));
        }

        [SkippableFact]
        public void ASymbolicLinkAsTheStartingPointIsAnErrorNotFollowed()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "walklink");
            string target = Directory.CreateDirectory(Path.Combine(dir, "real")).FullName;
            FileBuilder.WriteNew(Path.Combine(target, "x.img"), new byte[] { 1 });
            string link = Path.Combine(dir, "link");
            Directory.CreateSymbolicLink(link, target);
            WalkEntry only = Assert.Single(TreeWalker.Walk(link));
            Assert.Equal((WalkEntryKind.Error, FileErrorKind.IsSymbolicLink), (only.Kind, only.Error!.Kind));
            Assert.Contains(target, only.Error.Message, StringComparison.Ordinal);
        }

        /// <summary>
        /// Before: every -Recurse walk opened a directory before it asked whether another filesystem was
        /// mounted there, and the open of the mount point of one that no longer answers (a stale sshfs or NFS
        /// mount; here a FUSE daemon that withholds every answer) waited forever. Now the walker asks the
        /// kernel's cache first (statx AT_STATX_DONT_SYNC) and passes it as another filesystem, unopened. Files
        /// too (hostile review): a dead filesystem mounted on a file hung every cmdlet that opened it, and a file of
        /// another subvolume bind-mounted into the tree was defragmented, both without -CrossFileSystem.
        /// </summary>
        [SkippableFact]
        public void AMountThatNoLongerAnswersInsideTheTreeIsPassedNotWaitedFor()
        {
            string root = fs.NewDirectory(TestFs.Btrfs, "deadmount");
            Directory.CreateDirectory(Path.Combine(root, "sub"));
            FileBuilder.WriteNew(Path.Combine(root, "a.img"), new byte[] { 1 });
            FileBuilder.WriteNew(Path.Combine(root, "sub", "b.img"), new byte[] { 2 });
            string mnt = Directory.CreateDirectory(Path.Combine(root, "mnt")).FullName;
            string deadFile = Path.Combine(root, "z.img"), bound = Path.Combine(root, "bound.img");
            FileBuilder.WriteNew(deadFile, Array.Empty<byte>());
            FileBuilder.WriteNew(bound, Array.Empty<byte>());
            string elsewhere = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "deadmount-elsewhere"), "sv");
            Shell.Run("btrfs", "subvolume", "create", elsewhere);
            string other = Path.Combine(elsewhere, "frag.img");
            FileBuilder.WrittenInRandomOrder(other, 256 << 10, fsyncEvery: 1); // many extents, in another subvolume
            int otherExtents = Filefrag.Extents(other).Count;
            string copy = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "deadmount-copy"), "c");
            string[]? entriesFirst = null, depthFirst = null;
            PwshResult? r = null;
            bool walked = false, ran;
            int withheld, withheldOnFile;
            Shell.Run("mount", "--bind", other, bound); // a file of another subvolume bind-mounted into the tree
            try
            {
            using (HangingFuse fuse = HangingFuse.Mount(mnt))
            using (HangingFuse fileFuse = HangingFuse.MountOnFile(deadFile)) // and a dead filesystem mounted on a file
            {
                fuse.HangAll();
                fileFuse.HangAll();
                (ran, withheld) = fuse.Await(
                    () =>
                    {
                        entriesFirst = TreeWalker.Walk(root, false).Select(e => $"{e.Kind} {Path.GetRelativePath(root, e.Path)}").Order(StringComparer.Ordinal).ToArray();
                        depthFirst = TreeWalker.Walk(root, false, WalkFilter.None, null, WalkOrder.DepthFirst).Select(e => $"{e.Kind} {Path.GetRelativePath(root, e.Path)}").Order(StringComparer.Ordinal).ToArray();
                        walked = true;
                        r = Pwsh.Run(
                            """
                            $o = [ordered]@{}
                            $o.Fragmentation = @(Measure-Fragmentation -LiteralPath $p -Recurse).Count
                            $o.Extents = @(Get-BtrfsExtent -LiteralPath $p -Recurse).Count
                            $o.NoCow = @(Test-NoCow -LiteralPath $p -Recurse).Count
                            Set-NoCow -LiteralPath $p -Recurse -WhatIf
                            ConvertTo-NoCow -LiteralPath $p -Recurse -WhatIf
                            Invoke-BtrfsDefrag -LiteralPath $p -Recurse -WhatIf
                            $o.Duplicates = @(Find-BtrfsDuplicate -LiteralPath $p -Recurse).Count
                            $o.Usage = @(Measure-BtrfsUsage -LiteralPath $p -Recurse).Count
                            $o.Reflinks = @(New-BtrfsReflink -LiteralPath $p -Destination $c -Recurse).Count
                            Invoke-BtrfsDefrag -LiteralPath $p -Recurse -Confirm:$false | Out-Null
                            [pscustomobject]$o
                            """,
                            ("p", root),
                            ("c", copy));
                    },
                    TimeSpan.FromSeconds(150));
                withheldOnFile = fileFuse.Withheld;
            }
            }
            finally
            {
                Shell.Try("umount", bound);
            }

            Assert.True(ran || walked, $"the walk waited for the mount that does not answer ({withheld} request(s) withheld)");
            Assert.Equal(0, withheldOnFile);
            string[] expected = { "Directory .", "Directory sub", "File a.img", "File sub/b.img", "OtherFileSystem bound.img", "OtherFileSystem mnt", "OtherFileSystem z.img" };
            Assert.Equal(expected, entriesFirst);
            Assert.Equal(expected, depthFirst);
            Assert.True(ran, $"a recursive cmdlet waited for the mount that does not answer ({withheld} request(s) withheld)");
            Assert.Equal(0, withheld);
            Assert.Empty(r!.Errors);
            PSObject counts = r.Output[^1];
            Assert.Equal((2, 2, 4, 2), ((int)counts.Properties["Fragmentation"].Value, (int)counts.Properties["Extents"].Value, (int)counts.Properties["NoCow"].Value, (int)counts.Properties["Usage"].Value)); // the files and directories of the tree, nothing below mnt
            Assert.True(File.Exists(Path.Combine(copy, "sub", "b.img")));
            Assert.False(Directory.Exists(Path.Combine(copy, "mnt")));
            Assert.False(File.Exists(Path.Combine(copy, "bound.img")));
            Assert.False(File.Exists(Path.Combine(copy, "z.img")));
            Assert.Equal(otherExtents, Filefrag.Extents(other).Count); // the other subvolume's file was not defragmented
        }

        /// <summary>
        /// Before: a FUSE mount of another user without allow_other (root may not enter it either) refused the
        /// walk's look at it (EACCES), and every -Recurse wrote an error for it. The kernel tells such a mount's
        /// device when asked for nothing else: it is passed as another filesystem, as any mount is.
        /// </summary>
        [SkippableFact]
        public void AnotherUsersFuseMountThatRootMayNotEnterIsAnotherFilesystemNotAnError()
        {
            string root = fs.NewDirectory(TestFs.Btrfs, "fuse-private");
            FileBuilder.WriteNew(Path.Combine(root, "a.img"), new byte[] { 1 });
            string mnt = Directory.CreateDirectory(Path.Combine(root, "mnt")).FullName;
            string[] shape;
            using (HangingFuse.Mount(mnt, owner: 65534, allowOther: false))
            {
                Assert.Throws<UnauthorizedAccessException>(() => Directory.GetFiles(mnt)); // root may not enter it
                shape = TreeWalker.Walk(root, false).Select(e => $"{e.Kind} {Path.GetRelativePath(root, e.Path)}").Order(StringComparer.Ordinal).ToArray();
            }

            Assert.Equal(new[] { "Directory .", "File a.img", "OtherFileSystem mnt" }, shape);
        }

        /// <summary>
        /// Files that may be mount points are found from the mount table by their real paths (one read per walk,
        /// not a stat of every file): a file bind-mounted deep in the tree is passed whichever path the walk
        /// starts from (through a symbolic link to a parent, with a trailing slash, through another mount
        /// namespace's /proc/PID/root, whose mounts this mount table does not list), and handed out with
        /// -CrossFileSystem.
        /// </summary>
        [SkippableFact]
        public void AFileBindMountedDeepInTheTreeIsPassedWhicheverPathLeadsToIt()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "filemount");
            string tree = Path.Combine(dir, "real", "tree");
            Directory.CreateDirectory(Path.Combine(tree, "sub", "deep"));
            FileBuilder.WriteNew(Path.Combine(tree, "sub", "deep", "x.img"), Array.Empty<byte>());
            FileBuilder.WriteNew(Path.Combine(tree, "sub", "deep", "y.img"), new byte[] { 1 });
            Directory.CreateSymbolicLink(Path.Combine(dir, "link"), Path.Combine(dir, "real"));
            string elsewhere = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "filemount-elsewhere"), "sv");
            Shell.Run("btrfs", "subvolume", "create", elsewhere);
            FileBuilder.WriteNew(Path.Combine(elsewhere, "f.img"), new byte[] { 2 });
            Shell.Run("mount", "--bind", Path.Combine(elsewhere, "f.img"), Path.Combine(tree, "sub", "deep", "x.img"));
            try
            {
                string[] Shape(string root, bool cross) =>
                    TreeWalker.Walk(root, cross).Select(e => $"{e.Kind} {Path.GetRelativePath(root, e.Path)}").Order(StringComparer.Ordinal).ToArray();
                string[] expected = { "Directory .", "Directory sub", "Directory sub/deep", "File sub/deep/y.img", "OtherFileSystem sub/deep/x.img" };
                Assert.Equal(expected, Shape(tree, cross: false));
                Assert.Equal(expected, Shape(Path.Combine(dir, "link", "tree"), cross: false));
                Assert.Equal(expected, Shape(tree + "/", cross: false));
                Assert.Contains("File sub/deep/x.img", Shape(tree, cross: true));

                // Through another mount namespace (/proc/PID/root, as a container's files are reached from the host):
                // a file mounted there only is not in this mount table, and still passed.
                Directory.CreateDirectory(Path.Combine(tree, "sub", "plain"));
                string y = Path.Combine(tree, "sub", "plain", "y.img"); // in a directory with no mount in this namespace
                FileBuilder.WriteNew(y, new byte[] { 3 });
                using ChildProcess other = ChildProcess.Start("unshare", "-m", "--propagation", "private", "sh", "-c", "mount --bind \"$1\" \"$2\" && echo ready && exec cat", "_", Path.Combine(elsewhere, "f.img"), y);
                string viaOther = $"/proc/{other.Pid}/root{tree}";
                Assert.Equal(new[] { "Directory .", "Directory sub", "Directory sub/deep", "Directory sub/plain", "File sub/deep/y.img", "OtherFileSystem sub/deep/x.img", "OtherFileSystem sub/plain/y.img" }, Shape(viaOther, cross: false));
            }
            finally
            {
                Shell.Try("umount", Path.Combine(tree, "sub", "deep", "x.img"));
            }
        }
    }
}
