namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
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
                Shell.Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", Path.Combine(root, "mnt"));
                FileBuilder.WriteNew(Path.Combine(root, "mnt", "e.img"), new byte[] { 5 });
                File.SetUnixFileMode(Path.Combine(root, "locked"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            internal string Root { get; }

            internal string Rel(string path) => path == Root ? "." : path[(Root.Length + 1)..];

            public void Dispose() => Shell.Try("umount", Path.Combine(Root, "mnt"));
        }

        private static string[] Shape(Tree t, bool cross) =>
            TreeWalker.Walk(t.Root, cross).Select(e => $"{e.Kind} {t.Rel(e.Path)}").OrderBy(x => x, StringComparer.Ordinal).ToArray();

        [SkippableFact]
        public void StaysOnItsFilesystemFollowsNoLinksAndClassifiesWithoutOpening()
        {
            using var t = new Tree(fs.NewDirectory(TestFs.Btrfs, "walk"));
            Task<string[]> walk = Task.Run(() => Shape(t, cross: false));
            Assert.True(walk.Wait(TimeSpan.FromSeconds(20)), "the walk hung (a FIFO was opened?)");
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
    }
}
