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

    /// <summary>Set-NoCow on real filesystems, checked with lsattr; every refusal leaves the file exactly as it was.</summary>
    [Collection(FileSystemCollection.Name)]
    public class SetNoCowTests(LoopFileSystems fs)
    {
        [SkippableFact]
        public void APathThroughAFileIsNamedAsGivenAsEveryCmdletNamesIt()
        {
            // Before: Set-NoCow -LiteralPath file/x said "Cannot open the directory 'file'" with 'file' as the target,
            // where the other cmdlets name 'file/x'. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "through-file");
            string file = Path.Combine(dir, "r10m");
            FileBuilder.WriteNew(file, new byte[10]);
            string beyond = Path.Combine(file, "x"), missing = Path.Combine(dir, "gone", "x");
            PwshResult r = Pwsh.Run("Set-NoCow -LiteralPath $b, $m; Test-NoCow -LiteralPath $b", ("b", beyond), ("m", missing));
            Assert.Equal(3, r.Errors.Count);
            Assert.Equal(new object[] { beyond, missing, beyond }, r.Errors.Select(e => e.TargetObject).ToArray());
            Assert.Equal(r.Errors[2].FullyQualifiedErrorId.Split(',')[0], r.Errors[0].FullyQualifiedErrorId.Split(',')[0]);
            Assert.StartsWith($"Cannot open '{beyond}'", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.StartsWith($"Cannot open '{missing}'", r.Errors[1].Exception.Message, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void AnEmptyFileAndADirectoryGetTheAttributeAndLoseItWithDisable()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "set");
            string file = Path.Combine(dir, "new.img");
            FileBuilder.WriteNew(file, Array.Empty<byte>());

            PwshResult r = Pwsh.Run("Set-NoCow -LiteralPath $f, $d", ("f", file), ("d", dir));
            Assert.Empty(r.Errors);
            Assert.Empty(r.Output); // silent without -PassThru
            Assert.True(FileFacts.HasNoCow(file));
            Assert.True(FileFacts.HasNoCow(dir));

            // A file created in the directory now inherits it: the point of marking a directory.
            string child = Path.Combine(dir, "child.img");
            FileBuilder.Chunks(child, 1, 4096, 4096);
            Assert.True(FileFacts.HasNoCow(child));

            r = Pwsh.Run("Set-NoCow -LiteralPath $f, $d -Disable -PassThru", ("f", file), ("d", dir));
            Assert.Empty(r.Errors);
            Assert.Equal(new[] { false, false }, r.Objects<NoCowStatus>().Select(s => s.IsNoCow));
            Assert.False(FileFacts.HasNoCow(file));
            Assert.False(FileFacts.HasNoCow(dir));
        }

        [SkippableFact]
        public void PassThruEmitsTheDetailedObjectAndAnAlreadySetItemIsNotRewritten()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "passthru");
            PwshResult r = Pwsh.Run("Set-NoCow $d -PassThru; Set-NoCow $d -PassThru -Verbose", ("d", dir));
            Assert.Empty(r.Errors);
            Assert.All(r.Objects<NoCowStatus>(), s => Assert.True(s.IsNoCow));
            Assert.Equal(2, r.Output.Count);
            Assert.Contains(r.Verbose, v => v.Message.Contains("already NOCOW", StringComparison.Ordinal));
        }

        [SkippableFact]
        public void ANonEmptyFileIsRefusedNamingConvertToNoCowAndStaysAsItWas()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "nonempty");
            string file = Path.Combine(dir, "data.img");
            FileBuilder.Chunks(file, 2, 4096, 4096);
            FileFacts before = FileFacts.Of(file);
            string after = Path.Combine(dir, "after.img");
            FileBuilder.WriteNew(after, Array.Empty<byte>());

            PwshResult r = Pwsh.Run("Set-NoCow -LiteralPath $f, $g", ("f", file), ("g", after));
            Expect.Error(r, "SetNoCowCommand", file, "NoCowRequiresEmptyFile", ErrorCategory.InvalidOperation, "ConvertTo-NoCow", "empty file");
            Assert.Single(r.Errors);
            Assert.Equal(before, FileFacts.Of(file));
            Assert.True(FileFacts.HasNoCow(after)); // the next item was still processed
        }

        [SkippableFact]
        public void AReadOnlySnapshotWalkedIsRefusedOnceNotOncePerItem()
        {
            // Every item a walk of a read-only snapshot finds is refused the same way: one error for the tree (before: one
            // ReadOnlySnapshot error per directory and file). Found by a hostile review.
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            string sv = Path.Combine(x.MountPoint, "sv");
            Shell.Run("btrfs", "subvolume", "create", sv);
            for (int i = 0; i < 3; i++)
            {
                string d = Directory.CreateDirectory(Path.Combine(sv, "d" + i)).FullName;
                FileBuilder.WriteNew(Path.Combine(d, "empty.img"), Array.Empty<byte>());
            }

            string snap = Path.Combine(x.MountPoint, "snap");
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", sv, snap);
            string[] listing = FileFacts.Listing(snap);
            PwshResult r = Pwsh.Run("Set-NoCow -LiteralPath $s -Recurse -Confirm:$false; ConvertTo-NoCow -LiteralPath $s -Recurse -Confirm:$false", ("s", snap));
            Assert.Equal(new[] { "ReadOnlySnapshot", "ReadOnlySnapshot" }, r.ErrorIds);
            Assert.All(r.Errors, e => Assert.Contains("they are not walked", e.ToString(), StringComparison.Ordinal));
            Assert.Equal(listing, FileFacts.Listing(snap));
        }

        [SkippableFact]
        public void TheEmptyDirectoryASnapshotShowsForANestedSubvolumeTakesNoAttributeAndIsPassedOver()
        {
            // Before: Set-NoCow on it, and -Recurse -CrossFileSystem through a snapshot (also a read-only one, after its one
            // ReadOnlySnapshot error), gave a raw "Inappropriate ioctl for device (FS_IOC_SETFLAGS: ENOTTY)" after -WhatIf
            // had promised the change; Test-NoCow advised Set-NoCow for it. Found by a hostile test.
            string dir = fs.NewDirectory(TestFs.Btrfs, "placeholder");
            string P(string x) => Path.Combine(dir, x);
            Shell.Run("btrfs", "subvolume", "create", P("V"));
            Directory.CreateDirectory(P("V/d"));
            FileBuilder.WriteNew(P("V/d/a"), FileBuilder.RandomBytes(65536, 3));
            Shell.Run("btrfs", "subvolume", "create", P("V/N"));
            Shell.Run("btrfs", "subvolume", "snapshot", P("V"), P("S"));
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", P("V"), P("R"));
            Assert.Equal("2", Shell.Run("stat", "-c", "%i", P("S/N")).Trim()); // what btrfs shows there
            const string Is = "it is the empty directory btrfs shows in a snapshot where the snapshot's source had a nested subvolume";
            string[] listing = FileFacts.Listing(dir);

            foreach (string command in new[] { "Set-NoCow -LiteralPath $n -WhatIf", "Set-NoCow -LiteralPath $n -Confirm:$false" })
            {
                PwshResult r = Pwsh.Run(command, new Dictionary<string, object?> { ["n"] = P("S/N") }, captureHost: true);
                Assert.Equal(new[] { "SubvolumePlaceholder" }, r.ErrorIds);
                Assert.Equal(ErrorCategory.InvalidArgument, r.Errors[0].CategoryInfo.Category);
                Assert.Equal(P("S/N"), r.Errors[0].TargetObject);
                Assert.Contains(Is, r.Errors[0].Exception.Message, StringComparison.Ordinal);
                Assert.Contains("Nothing was changed", r.Errors[0].Exception.Message, StringComparison.Ordinal);
                Assert.DoesNotContain("What if", r.HostText, StringComparison.Ordinal);
            }

            Assert.Equal(listing, FileFacts.Listing(dir));

            // Walked (with and without -CrossFileSystem): passed over with a verbose note that says what it is.
            foreach (string command in new[]
            {
                "Set-NoCow -LiteralPath $s -Recurse -CrossFileSystem -Confirm:$false -Verbose",
                "ConvertTo-NoCow -LiteralPath $s -Recurse -CrossFileSystem -Force -Confirm:$false -Verbose",
                "Test-NoCow -LiteralPath $s -Recurse -CrossFileSystem -Verbose",
                "Test-NoCow -LiteralPath $s -Recurse -Verbose",
            })
            {
                PwshResult r = Pwsh.Run(command, ("s", P("S")));
                Assert.True(r.Errors.Count == 0, command + ": " + string.Join("\n", r.Errors.Select(e => e.FullyQualifiedErrorId + ": " + e.Exception.Message)));
                Assert.Contains(r.Verbose, v => v.Message == $"Skipping '{P("S/N")}': {Is} (a snapshot does not take nested subvolumes with it): it holds nothing, and btrfs takes no attribute or other change on it.");
            }

            Assert.True(FileFacts.HasNoCow(P("S/d/a")));

            // A read-only snapshot: its one error, no other.
            Assert.Equal(new[] { "ReadOnlySnapshot" }, Pwsh.Run("Set-NoCow -LiteralPath $s -Recurse -CrossFileSystem -Confirm:$false", ("s", P("R"))).ErrorIds);

            // Test-NoCow says it cannot be made NOCOW (before: "use Set-NoCow on it").
            PwshResult t = Pwsh.Run("Test-NoCow -LiteralPath $n -Detailed", ("n", P("S/N")));
            NoCowStatus status = Assert.Single(t.Objects<NoCowStatus>());
            Assert.False(status.IsNoCow || status.NoCowInEffect);
            Assert.StartsWith("Not NOCOW, and it cannot be made so: " + Is, status.Reason[0], StringComparison.Ordinal);
        }

        [SkippableFact]
        public void TheCompressionAttributeConflictIsRefused()
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "compr"), "c.img");
            FileBuilder.WriteNew(file, Array.Empty<byte>());
            Shell.Run("chattr", "+c", file);
            FileFacts before = FileFacts.Of(file);
            PwshResult r = Pwsh.Run("Set-NoCow -LiteralPath $f", ("f", file));
            Expect.Error(r, "SetNoCowCommand", file, "NoCowConflictsWithCompression", ErrorCategory.InvalidOperation, "compression", "chattr -c");
            Assert.Equal(before, FileFacts.Of(file));
        }

        [SkippableTheory]
        [InlineData((int)TestFs.Xfs, "xfs")]
        [InlineData((int)TestFs.Ext4, "ext4")]
        [InlineData((int)TestFs.Tmpfs, "tmpfs")]
        public void OtherFilesystemsAreNoCowNotSupportedNamingTheFilesystem(int which, string name)
        {
            string dir = fs.NewDirectory((TestFs)which, "nosupport");
            string file = Path.Combine(dir, "e.img");
            FileBuilder.WriteNew(file, Array.Empty<byte>());
            FileFacts before = FileFacts.Of(file);
            PwshResult r = Pwsh.Run("Set-NoCow -LiteralPath $f", ("f", file));
            Expect.Error(r, "SetNoCowCommand", file, "NoCowNotSupported", ErrorCategory.NotImplemented, $"on {name}", "no NOCOW attribute");
            Assert.Equal(before, FileFacts.Of(file));
        }

        [SkippableFact]
        public void AnImmutableFileIsRefusedClearly()
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "immutable"), "i.img");
            FileBuilder.WriteNew(file, Array.Empty<byte>());
            Shell.Run("chattr", "+i", file);
            try
            {
                FileFacts before = FileFacts.Of(file);
                PwshResult r = Pwsh.Run("Set-NoCow -LiteralPath $f", ("f", file));
                Expect.Error(r, "SetNoCowCommand", file, "FileIsImmutable", ErrorCategory.PermissionDenied, "immutable", "chattr -i");
                Assert.Equal(before, FileFacts.Of(file));
            }
            finally
            {
                Shell.Run("chattr", "-i", file);
            }
        }

        [SkippableFact]
        public void AnotherUsersFileIsPermissionDenied()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "perm");
            string file = Path.Combine(dir, "root.img");
            FileBuilder.WriteNew(file, Array.Empty<byte>());
            File.SetUnixFileMode(file, (UnixFileMode)0x1B6); // 0666: readable and writable, but owned by root
            FileFacts before = FileFacts.Of(file);
            PwshResult r;
            PwshResult preview;
            using (FsUid.Become(FsUid.Nobody))
            {
                r = Pwsh.Run("Set-NoCow -LiteralPath $f", ("f", file));

                // -WhatIf says so too, for a directory of root's as well (before: "What if: ...", then EPERM. A hostile test).
                preview = Pwsh.Run("Set-NoCow -LiteralPath $f, $d -WhatIf", new Dictionary<string, object?> { ["f"] = file, ["d"] = dir }, captureHost: true);
            }

            Expect.Error(r, "SetNoCowCommand", file, "AccessDenied", ErrorCategory.PermissionDenied, "owner");
            Assert.Equal(new[] { "AccessDenied", "AccessDenied" }, preview.ErrorIds);
            Assert.Equal(new object[] { file, dir }, preview.Errors.Select(e => e.TargetObject));
            Assert.DoesNotContain("What if", preview.HostText, StringComparison.Ordinal);
            Assert.Equal(before, FileFacts.Of(file));
            Assert.False(FileFacts.HasNoCow(dir));

            // With -Recurse, another user's file that is not empty is left with the warning, as any such file (a review:
            // an AccessDenied error each instead, against the help).
            string mine = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "perm-recurse"), "tree");
            Directory.CreateDirectory(mine);
            FileBuilder.WriteNew(Path.Combine(mine, "roots.img"), FileBuilder.RandomBytes(4096, 1));
            Shell.Run("chown", "65534:65534", mine);
            using (FsUid.Become(FsUid.Nobody))
            {
                r = Pwsh.Run("Set-NoCow -LiteralPath $d -Recurse", ("d", mine));
            }

            Assert.Empty(r.Errors);
            Assert.Contains("1 file(s)", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.True(FileFacts.HasNoCow(mine));
        }

        [SkippableFact]
        public void ASymbolicLinkIsRefusedAndNamesItsTarget()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "symlink");
            string target = Path.Combine(dir, "target.img");
            FileBuilder.WriteNew(target, Array.Empty<byte>());
            string link = Path.Combine(dir, "link.img");
            File.CreateSymbolicLink(link, target);
            PwshResult r = Pwsh.Run("Set-NoCow -LiteralPath $f", ("f", link));
            Expect.Error(r, "SetNoCowCommand", link, "PathIsSymbolicLink", ErrorCategory.InvalidArgument, target);
            Assert.False(FileFacts.HasNoCow(target));
        }

        [SkippableFact]
        public void WhatIfChangesNothing()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "whatif");
            string file = Path.Combine(dir, "e.img");
            FileBuilder.WriteNew(file, Array.Empty<byte>());
            PwshResult r = Pwsh.Run("Set-NoCow -LiteralPath $f, $d -WhatIf", ("f", file), ("d", dir));
            Assert.Empty(r.Errors);
            Assert.False(FileFacts.HasNoCow(file));
            Assert.False(FileFacts.HasNoCow(dir));
        }

        [SkippableFact]
        public void RecurseMarksDirectoriesAndEmptyFilesAndReportsTheFilesWithData()
        {
            string root = fs.NewDirectory(TestFs.Btrfs, "tree");
            string sub = Directory.CreateDirectory(Path.Combine(root, "sub", "deeper")).FullName;
            string emptyTop = Path.Combine(root, "empty.img");
            string emptyDeep = Path.Combine(sub, "empty.img");
            string full = Path.Combine(root, "sub", "full.img");
            FileBuilder.WriteNew(emptyTop, Array.Empty<byte>());
            FileBuilder.WriteNew(emptyDeep, Array.Empty<byte>());
            FileBuilder.Chunks(full, 2, 4096, 4096);
            string link = Path.Combine(root, "link-to-outside");
            string outside = fs.NewDirectory(TestFs.Btrfs, "outside");
            Directory.CreateSymbolicLink(link, outside);
            FileFacts fullBefore = FileFacts.Of(full);

            PwshResult r = Pwsh.Run("Set-NoCow -LiteralPath $r -Recurse", ("r", root));
            Assert.Empty(r.Errors);
            foreach (string p in new[] { root, Path.Combine(root, "sub"), sub, emptyTop, emptyDeep })
            {
                Assert.True(FileFacts.HasNoCow(p), p + " should be NOCOW");
            }

            Assert.Equal(fullBefore, FileFacts.Of(full));
            Assert.False(FileFacts.HasNoCow(outside)); // the link was not followed
            NoCowStatus skipped = Assert.Single(r.Objects<NoCowStatus>());
            Assert.Equal(full, skipped.Path);
            Assert.False(skipped.IsNoCow);
            Assert.Equal("COW file in a NOCOW directory (made before the directory was marked, moved in, or made COW with ConvertFrom-NoCow); ConvertTo-NoCow makes it NOCOW.", skipped.ReasonText);
            WarningRecord w = Assert.Single(r.Warnings);
            Assert.Contains("1 file(s)", w.Message, StringComparison.Ordinal);
            Assert.Contains("ConvertTo-NoCow -Recurse", w.Message, StringComparison.Ordinal);
        }
    }
}
