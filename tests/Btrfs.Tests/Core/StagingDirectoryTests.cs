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
    }
}
