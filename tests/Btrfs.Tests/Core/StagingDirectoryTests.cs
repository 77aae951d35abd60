namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using Btrfs.Core;
    using Btrfs.Interop;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// A tree built hidden and published with one rename: a name that appeared meanwhile is never
    /// replaced, an unpublished tree is removed, and only leftovers proven this module's own are removed.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class StagingDirectoryTests(LoopFileSystems fs)
    {
        [SkippableFact]
        public void ALookInsideALeftoverNeverOpensAFifoOrADevice()
        {
            // Before: the look inside a hidden name (a killed run's leftover?) checked that the name was a regular file,
            // then opened the name again: a FIFO renamed onto it in between was opened (a writer waiting on it was let
            // go; a device node would have been opened by root). Now the name is taken without opening it (O_PATH), and
            // only that inode, proven regular, is opened. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "look-inside");
            Shell.Run("mkfifo", Path.Combine(dir, "fifo"));
            Shell.Run("mknod", Path.Combine(dir, "null"), "c", "1", "3");
            File.WriteAllText(Path.Combine(dir, "plain"), "x");
            using SafeFileDescriptor parent = DirectoryHandle.Open(dir);
            using (ChildProcess writer = ChildProcess.Start("python3", "-c", "import os,sys\nprint('ready',flush=True)\nfd=os.open(sys.argv[1],os.O_WRONLY)\nprint('opened',flush=True)\nsys.stdin.read()", Path.Combine(dir, "fifo")))
            {
                Assert.Null(Names.TryOpenForReading(parent, "fifo"));
                Assert.Null(writer.ReadLine(TimeSpan.FromMilliseconds(500))); // still waiting for a reader
            }

            Assert.Null(Names.TryOpenForReading(parent, "null"));
            using SafeFileDescriptor? plain = Names.TryOpenForReading(parent, "plain");
            Assert.NotNull(plain);
        }

        [SkippableFact]
        public void ANameThatAppearedMeanwhileIsNeverReplacedAndTheUnpublishedTreeIsRemoved()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "publish");
            using SafeFileDescriptor parent = DirectoryHandle.Open(dir);
            using (StagingDirectory staging = StagingDirectory.Create(parent, dir, "tree", 0x1ED))
            {
                Assert.Single(Directory.GetDirectories(dir, ".tree.~btrfs-staging-*"));
                Assert.Equal(0, Names.TryMakeDirectory(staging.Handle, "sub", 0x1ED));
                File.WriteAllText(Path.Combine(Directory.GetDirectories(dir).Single(), "sub", "f"), "x");
                File.CreateSymbolicLink(Path.Combine(Directory.GetDirectories(dir).Single(), "link"), "/etc");

                Directory.CreateDirectory(Path.Combine(dir, "tree"));
                File.WriteAllText(Path.Combine(dir, "tree", "theirs"), "theirs");
                FileOperationException ex = Assert.Throws<FileOperationException>(staging.Publish);
                Assert.Equal(FileErrorKind.AlreadyExists, ex.Kind);
                Assert.Contains("never replaced", ex.Message, StringComparison.Ordinal);
            }

            // Disposed unpublished: everything it built is gone (the link removed, not followed); theirs is untouched.
            Assert.Equal(new[] { "tree" }, FileFacts.Listing(dir));
            Assert.Equal(new[] { "theirs" }, FileFacts.Listing(Path.Combine(dir, "tree")));
            Assert.True(File.Exists("/etc/hostname") || Directory.Exists("/etc"));
        }

        [SkippableFact]
        public void ADirectorySwappedInUnderTheHiddenNameIsNeitherRenamedNorEmptied()
        {
            // Before: Dispose and Publish went by the hidden name again: a directory someone renamed to it
            // (in a shared, writable directory) was published, or emptied with the caller's rights.
            string dir = fs.NewDirectory(TestFs.Btrfs, "swapped");
            using SafeFileDescriptor parent = DirectoryHandle.Open(dir);
            string victim = Directory.CreateDirectory(Path.Combine(dir, "project", "src")).Parent!.FullName;
            File.WriteAllText(Path.Combine(victim, "src", "main.c"), "int main;");
            using (StagingDirectory staging = StagingDirectory.Create(parent, dir, "tree", 0x1ED))
            {
                string hidden = Directory.GetDirectories(dir, ".tree.~btrfs-staging-*").Single();
                File.WriteAllText(Path.Combine(hidden, "copied"), "x");
                Directory.Move(hidden, Path.Combine(dir, "moved"));
                Directory.Move(victim, hidden);

                FileOperationException ex = Assert.Throws<FileOperationException>(staging.Publish);
                Assert.Equal(FileErrorKind.ChangedDuringCopy, ex.Kind);
                Assert.False(Directory.Exists(Path.Combine(dir, "tree")));
            }

            // Its own tree (wherever it went) was emptied through its descriptor; the swapped-in one is intact.
            string swappedIn = Directory.GetDirectories(dir, ".tree.~btrfs-staging-*").Single();
            Assert.Equal("int main;", File.ReadAllText(Path.Combine(swappedIn, "src", "main.c")));
            Assert.Empty(FileFacts.Listing(Path.Combine(dir, "moved")));
        }

        /// <summary>
        /// Before (a review and a hostile test of Remove-BtrfsSubvolume): the directory a subvolume is moved into to be
        /// deleted was emptied when disposed, like a copy's; a directory another user had exchanged with the subvolume's
        /// name, which could not be given its name back, was emptied with root's rights. Now one of a removal is only
        /// ever removed empty, disposed or left by a killed run; a copy's leftover is still emptied and removed, and a
        /// removal's is never taken for a copy's.
        /// </summary>
        [SkippableFact]
        public void TheDirectoryOfARemovalIsNeverEmptiedOnlyRemovedWhenEmpty()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "removal-hold");
            using SafeFileDescriptor parent = DirectoryHandle.Open(dir);
            string held;
            using (StagingDirectory hold = StagingDirectory.Create(parent, dir, "sv", 0x1C0, StagingDirectory.RemovalMarker))
            {
                held = Directory.GetDirectories(dir, ".sv.~btrfs-removing-*").Single();
                Directory.CreateDirectory(Path.Combine(held, "sv", "sub"));
                File.WriteAllText(Path.Combine(held, "sv", "sub", "secret"), "theirs");
            }

            Assert.Equal("theirs", File.ReadAllText(Path.Combine(held, "sv", "sub", "secret")));

            // A killed run's leftovers: a removal's with something in it kept, an empty one removed; a copy's emptied.
            string leftover = Path.Combine(dir, ".a.~btrfs-removing-999999998-0badc0de");
            string empty = Path.Combine(dir, ".b.~btrfs-removing-999999997-0badc0de");
            string copy = Path.Combine(dir, ".c.~btrfs-staging-999999996-0badc0de");
            foreach ((string d, string stamp) in new[] { (leftover, "999999998-0badc0de"), (empty, "999999997-0badc0de"), (copy, "999999996-0badc0de") })
            {
                Directory.CreateDirectory(d);
                Shell.Run("setfattr", "-n", "user.btrfs-module.temporary", "-v", stamp, d);
            }

            File.WriteAllText(Path.Combine(leftover, "kept"), "x");
            File.WriteAllText(Path.Combine(copy, "partial"), "x");
            using (StagingDirectory hold = StagingDirectory.Create(parent, dir, "next", 0x1C0, StagingDirectory.RemovalMarker))
            {
                Assert.True(File.Exists(Path.Combine(leftover, "kept")));
                Assert.False(Directory.Exists(empty));
                Assert.True(File.Exists(Path.Combine(copy, "partial"))); // a copy's is not a removal's to remove
            }

            using (StagingDirectory staging = StagingDirectory.Create(parent, dir, "tree", 0x1ED))
            {
                Assert.False(Directory.Exists(copy));
                Assert.True(File.Exists(Path.Combine(leftover, "kept"))); // nor a removal's a copy's
            }
        }

        [SkippableFact]
        public void ALeftoverWhoseRunStillHoldsItsLockIsKeptWhateverItsPid()
        {
            // A run in another PID namespace (a container) has a pid this one cannot see: its lock says it lives.
            string dir = fs.NewDirectory(TestFs.Btrfs, "locked");
            string other = Directory.CreateDirectory(Path.Combine(dir, ".tree.~btrfs-staging-999999999-0badc0de")).FullName;
            Shell.Run("setfattr", "-n", "user.btrfs-module.temporary", "-v", "999999999-0badc0de", other);
            File.WriteAllText(Path.Combine(other, "data"), "x");
            using SafeFileDescriptor parent = DirectoryHandle.Open(dir);
            using (SafeFileDescriptor held = DirectoryHandle.Open(other))
            {
                Assert.True(Locks.TryLockExclusive(held));
                using StagingDirectory staging = StagingDirectory.Create(parent, dir, "tree", 0x1ED);
                Assert.Empty(staging.RemovedLeftovers);
                Assert.True(File.Exists(Path.Combine(other, "data")));
            }

            // Its run gone (the lock released), the next one removes it.
            using StagingDirectory next = StagingDirectory.Create(parent, dir, "tree", 0x1ED);
            Assert.Equal(new[] { Path.GetFileName(other) }, next.RemovedLeftovers);
            Assert.False(Directory.Exists(other));
        }

        [SkippableFact]
        public void OnlyALeftoverProvenThisModulesOwnIsRemoved()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "leftovers");
            string Hidden(string stamp, string? marker, string? owner = null)
            {
                string path = Directory.CreateDirectory(Path.Combine(dir, ".tree.~btrfs-staging-" + stamp)).FullName;
                File.WriteAllText(Path.Combine(path, "data"), "x");
                if (marker is not null)
                {
                    Shell.Run("setfattr", "-n", "user.btrfs-module.temporary", "-v", marker, path);
                }

                if (owner is not null)
                {
                    Shell.Run("chown", owner, path);
                }

                return path;
            }

            string ours = Hidden("999999999-0badc0de", "999999999-0badc0de");
            string[] kept =
            {
                Hidden("999999998-0badc0de", null),                                        // no marker: someone else's
                Hidden("999999997-0badc0de", "999999999-0badc0de"),                        // marker of another name
                Hidden("999999996-0badc0de", "999999996-0badc0de", "1234:1234"),           // another user's
                Hidden($"{Environment.ProcessId}-00c0ffee", $"{Environment.ProcessId}-00c0ffee"), // a run still going
            };
            File.WriteAllText(Path.Combine(dir, ".tree.~btrfs-staging-999999995-0badc0de"), "a file, not a directory");

            using SafeFileDescriptor parent = DirectoryHandle.Open(dir);
            using StagingDirectory staging = StagingDirectory.Create(parent, dir, "tree", 0x1ED);
            Assert.Equal(new[] { Path.GetFileName(ours) }, staging.RemovedLeftovers);
            Assert.False(Directory.Exists(ours));
            Assert.All(kept, k => Assert.True(File.Exists(Path.Combine(k, "data")), k));
            Assert.True(File.Exists(Path.Combine(dir, ".tree.~btrfs-staging-999999995-0badc0de")));
        }

        [SkippableFact]
        public void ListingTheNamesOfADirectoryBeingWalkedNeitherMovesTheWalkNorMissesNames()
        {
            // Before: the names were read through a duplicate of the caller's descriptor, which shares its read
            // position: listed again, a directory gave nothing, and a walk listing it lost its place (the rest of
            // the directory was skipped when a named temporary file's leftovers were looked for mid-walk).
            string dir = fs.NewDirectory(TestFs.Btrfs, "names");
            for (int i = 0; i < 300; i++)
            {
                File.WriteAllText(Path.Combine(dir, $"f{i}"), "x");
            }

            using SafeFileDescriptor parent = DirectoryHandle.Open(Path.GetDirectoryName(dir)!);
            using DirectoryListing walk = DirectoryListing.TryOpen(parent, Path.GetFileName(dir), dir, string.Empty, out _)!;
            var walked = new System.Collections.Generic.List<string>();
            for (int i = 0; i < 10; i++)
            {
                walked.Add(walk.Next(out _)!.Value.Name);
            }

            Assert.Equal(300, DirectoryListing.Names(walk.Handle).Count);
            Assert.Equal(300, DirectoryListing.Names(walk.Handle).Count);
            while (walk.Next(out _) is { } next)
            {
                walked.Add(next.Name);
            }

            Assert.Equal(300, walked.Distinct().Count());
            Assert.Equal(300, walked.Count);
        }
    }
}
