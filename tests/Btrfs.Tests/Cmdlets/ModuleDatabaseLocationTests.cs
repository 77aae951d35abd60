namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// Where the module's SQLite files (Invoke-BtrfsDefrag -StatePath, Find-BtrfsDuplicate -HashFile) may be:
    /// SQLite opens them and their -wal and -shm files by name, so a directory another user can change would let
    /// that user put a link there between the module's checks and SQLite's open (this machine has
    /// fs.protected_symlinks = 0: a run as root follows another user's link even in /tmp).
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class ModuleDatabaseLocationTests(LoopFileSystems fs)
    {
        [SkippableTheory]
        [InlineData("1777")] // shared and sticky, like /tmp
        [InlineData("0775")] // group-writable
        [InlineData("owner")] // another user's (they may rename and replace anything in it)
        [InlineData("link")] // a private directory's link to a shared one: judged where it leads
        [InlineData("ancestor")] // a private directory inside one others may write to that is not sticky (they may rename it away)
        [InlineData("foreign-link")] // another user's link (in a sticky directory) to a private directory of the caller's: its owner chose where the file goes
        public void AStateOrHashFileWhereAnotherUserCanChangeTheDirectoryIsRefusedBeforeAnythingIsCreated(string how)
        {
            string files = fs.NewDirectory(TestFs.Btrfs, "dbloc-files");
            FileBuilder.Fragmented(Path.Combine(files, "a.img"), 1 << 20, 40, seed: 97);
            string layout = string.Join(";", Filefrag.Extents(Path.Combine(files, "a.img")).Select(e => $"{e.Logical}:{e.Physical}:{e.Length}"));
            string shared = fs.NewDirectory(TestFs.Btrfs, "dbloc-" + how);
            string dir = shared;
            switch (how)
            {
                case "owner":
                    Shell.Run("chown", "65534:65534", shared);
                    Shell.Run("chmod", "0755", shared);
                    break;
                case "link":
                    Shell.Run("chmod", "1777", shared);
                    dir = fs.NewDirectory(TestFs.Btrfs, "dbloc-private");
                    Shell.Run("chmod", "0700", dir);
                    File.CreateSymbolicLink(Path.Combine(dir, "state"), shared);
                    dir = Path.Combine(dir, "state");
                    break;
                case "foreign-link":
                    Shell.Run("chmod", "1777", shared);
                    string target = fs.NewDirectory(TestFs.Btrfs, "dbloc-chosen");
                    Shell.Run("chmod", "0700", target);
                    File.CreateSymbolicLink(Path.Combine(shared, "state"), target);
                    Shell.Run("chown", "-h", "65534:65534", Path.Combine(shared, "state"));
                    dir = Path.Combine(shared, "state");
                    break;
                case "ancestor":
                    Shell.Run("chmod", "0777", shared);
                    dir = Directory.CreateDirectory(Path.Combine(shared, "mine")).FullName;
                    Shell.Run("chmod", "0700", dir);
                    break;
                default:
                    Shell.Run("chmod", how, shared);
                    break;
            }

            PwshResult defrag = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $d -Recurse -StatePath $s -Confirm:$false", ("d", files), ("s", Path.Combine(dir, "state.db")));
            PwshResult find = Pwsh.Run("Find-BtrfsDuplicate -LiteralPath $d -Recurse -HashFile $h", ("d", files), ("h", Path.Combine(dir, "hashes.db")));
            foreach (PwshResult r in new[] { defrag, find })
            {
                var error = Assert.Single(r.Errors);
                Assert.StartsWith("UnsafeDirectory,", error.FullyQualifiedErrorId, StringComparison.Ordinal);
                Assert.Equal(System.Management.Automation.ErrorCategory.SecurityError, error.CategoryInfo.Category);
                Assert.Contains(shared, error.Exception.Message, StringComparison.Ordinal);
                Assert.Contains("mkdir -m 700", error.Exception.Message, StringComparison.Ordinal);
                Assert.Empty(r.Output);
            }

            Assert.Empty(Directory.EnumerateFileSystemEntries(how is "ancestor" or "foreign-link" ? new DirectoryInfo(dir).ResolveLinkTarget(true)?.FullName ?? dir : shared));
            Assert.Equal(layout, string.Join(";", Filefrag.Extents(Path.Combine(files, "a.img")).Select(e => $"{e.Logical}:{e.Physical}:{e.Length}")));
        }

        [SkippableFact]
        public void APrivateDirectoryBelowTheSharedStickyTmpIsFineAsRootAndAsItsOwner()
        {
            // Every fixture directory is below /tmp (sticky, written by all): allowed on the way, since no one
            // else can rename or remove what is not theirs in it.
            Assert.StartsWith("/tmp/", fs.NewDirectory(TestFs.Btrfs, "dbloc-where"), StringComparison.Ordinal);
            string files = fs.NewDirectory(TestFs.Btrfs, "dbloc-ok-files");
            FileBuilder.Fragmented(Path.Combine(files, "a.img"), 1 << 20, 40, seed: 98);
            string mine = fs.NewDirectory(TestFs.Btrfs, "dbloc-ok");
            Shell.Run("chmod", "0700", mine);
            PwshResult root = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $d -Recurse -StatePath $s -Confirm:$false", ("d", files), ("s", Path.Combine(mine, "state.db")));
            Assert.Empty(root.Errors);
            Assert.True(File.Exists(Path.Combine(mine, "state.db")));

            string nobodys = fs.NewDirectory(TestFs.Btrfs, "dbloc-ok-nobody");
            Shell.Run("chown", "65534:65534", nobodys);
            Shell.Run("chmod", "0700", nobodys);
            PwshResult asNobody;
            using (Unprivileged.Begin())
            {
                asNobody = Pwsh.Run("Find-BtrfsDuplicate -LiteralPath $d -Recurse -HashFile $h", ("d", files), ("h", Path.Combine(nobodys, "hashes.db")));
            }

            Assert.Empty(asNobody.Errors);
            Assert.Equal("65534", Shell.Run("stat", "-c", "%u", Path.Combine(nobodys, "hashes.db")).Trim());
        }

        [SkippableTheory]
        [InlineData("read-only")] // the caller's own file, mode 0400
        [InlineData("immutable")] // chattr +i: not even root may write it
        [InlineData("append-only")] // chattr +a: faccessat says writable; only an open for writing is refused
        [InlineData("directory")] // the caller's file in root's 0755 directory: no -wal file can be made beside it
        public void AStateOrHashFileTheCallerMayNotWriteIsRefusedAsSuchAndLeftAsItIs(string how)
        {
            // Before: "SQLite Error 10: 'disk I/O error'", said once SQLite had the file open.
            string files = fs.NewDirectory(TestFs.Btrfs, "dbro-files");
            FileBuilder.Fragmented(Path.Combine(files, "a.img"), 1 << 20, 40, seed: 96);
            string dir = fs.NewDirectory(TestFs.Btrfs, "dbro-" + how);
            Shell.Run("chmod", "0700", dir);
            string state = Path.Combine(dir, "state.db"), hashes = Path.Combine(dir, "hashes.db");
            Assert.Empty(Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $d -Recurse -StatePath $s -Confirm:$false -WarningAction SilentlyContinue", ("d", files), ("s", state)).Errors);
            Assert.Empty(Pwsh.Run("Find-BtrfsDuplicate -LiteralPath $d -Recurse -HashFile $h", ("d", files), ("h", hashes)).Errors);
            string layout = string.Join(";", Filefrag.Extents(Path.Combine(files, "a.img")).Select(e => $"{e.Logical}:{e.Physical}:{e.Length}"));
            bool asNobody = how is not ("immutable" or "append-only");
            if (asNobody)
            {
                Shell.Run("chown", "-R", "65534:65534", dir);
                Shell.Run("chmod", how == "read-only" ? "0400" : "0600", state, hashes);
                Shell.Run("chmod", how == "directory" ? "0755" : "0700", dir);
                Shell.Run("chown", how == "directory" ? "0:0" : "65534:65534", dir);
            }
            else
            {
                Shell.Run("chattr", how == "immutable" ? "+i" : "+a", state, hashes);
            }

            string before = FileFacts.Listing(dir).Aggregate(string.Empty, (a, n) => a + n + "=" + Shell.Run("stat", "-c", "%i %s %Y %a %u", Path.Combine(dir, n)) + Shell.Run("sha256sum", Path.Combine(dir, n)));
            PwshResult defrag, find;
            try
            {
                using (asNobody ? Unprivileged.AsNobody() : null)
                {
                    defrag = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $d -Recurse -StatePath $s -Confirm:$false", ("d", files), ("s", state));
                    find = Pwsh.Run("Find-BtrfsDuplicate -LiteralPath $d -Recurse -HashFile $h", ("d", files), ("h", hashes));
                }
            }
            finally
            {
                if (!asNobody)
                {
                    Shell.Run("chattr", "-i", "-a", state, hashes);
                }
            }

            foreach ((PwshResult r, string path) in new[] { (defrag, state), (find, hashes) })
            {
                var error = Assert.Single(r.Errors);
                Assert.StartsWith("AccessDenied,", error.FullyQualifiedErrorId, StringComparison.Ordinal);
                Assert.Equal(System.Management.Automation.ErrorCategory.PermissionDenied, error.CategoryInfo.Category);
                Assert.Equal(path, error.TargetObject);
                Assert.DoesNotContain("SQLite Error", error.Exception.Message, StringComparison.Ordinal);
                Assert.Contains(
                    how switch { "read-only" => "its mode is 400, owner uid 65534", "immutable" => "it is immutable (lsattr shows i)", "append-only" => "it is append-only (lsattr shows a)", _ => $"may not create files in its directory '{dir}'" },
                    error.Exception.Message,
                    StringComparison.Ordinal);
                Assert.Empty(r.Output);
            }

            Assert.Equal(before, FileFacts.Listing(dir).Aggregate(string.Empty, (a, n) => a + n + "=" + Shell.Run("stat", "-c", "%i %s %Y %a %u", Path.Combine(dir, n)) + Shell.Run("sha256sum", Path.Combine(dir, n))));
            Assert.Equal(layout, string.Join(";", Filefrag.Extents(Path.Combine(files, "a.img")).Select(e => $"{e.Logical}:{e.Physical}:{e.Length}")));
        }

        [SkippableFact]
        public void WhatARunKilledWhileMakingTheFileLeftIsRemovedByTheNextOneThatMakesOneThereAndOnlyThat()
        {
            // Before: a run killed while it made a new hash or state file (about 10 ms) left its hidden, marked
            // file (and SQLite's journal of it), and no later run removed them: only cmdlets that replace files
            // looked for their own leftovers.
            string files = fs.NewDirectory(TestFs.Btrfs, "dbleft-files");
            FileBuilder.WriteNew(Path.Combine(files, "a.img"), FileBuilder.RandomBytes(65536, 99));
            string dir = fs.NewDirectory(TestFs.Btrfs, "dbleft");
            Shell.Run("chmod", "0700", dir);
            string ours = Path.Combine(dir, ".h.db.~btrfs-999999999-0badc0de");
            string notOurs = Path.Combine(dir, ".h.db.~btrfs-999999998-0badc0de"); // the pattern, no marker
            foreach (string f in new[] { ours, ours + "-journal", notOurs })
            {
                FileBuilder.WriteNew(f, FileBuilder.RandomBytes(512, 1));
            }

            Shell.Run("setfattr", "-n", "user.btrfs-module.temporary", "-v", "999999999-0badc0de", ours);
            PwshResult r = Pwsh.Run("Find-BtrfsDuplicate -LiteralPath $d -Recurse -HashFile $h", ("d", files), ("h", Path.Combine(dir, "h.db")));
            Assert.Empty(r.Errors);
            Assert.Equal(new[] { ".h.db.~btrfs-999999998-0badc0de", "h.db" }, FileFacts.Listing(dir).Where(n => !n.StartsWith("h.db-", StringComparison.Ordinal)));
            Assert.False(File.Exists(ours));
            Assert.True(File.Exists(notOurs));
        }
    }
}
