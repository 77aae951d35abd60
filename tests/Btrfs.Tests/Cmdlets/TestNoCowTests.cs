namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using System.Threading.Tasks;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>Test-NoCow on real filesystems: the boolean a Pester test asks for, and the facts and reason behind it.</summary>
    [Collection(FileSystemCollection.Name)]
    public class TestNoCowTests(LoopFileSystems fs)
    {
        private static bool Plain(string path)
        {
            PwshResult r = Pwsh.Run("Test-NoCow -LiteralPath $p", ("p", path));
            Assert.Empty(r.Errors);
            return Assert.Single(r.Objects<bool>());
        }

        private string NoCowDirectory(string hint)
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, hint);
            Shell.Run("chattr", "+C", dir);
            return dir;
        }

        [SkippableFact]
        public void ANoCowDirectoryAndTheFileThatInheritedItAreTrue()
        {
            string dir = NoCowDirectory("nocow");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 4, 64 * 1024, 64 * 1024);
            Assert.True(FileFacts.HasNoCow(file)); // lsattr: inherited

            Assert.True(Plain(file));
            Assert.True(Plain(dir));

            NoCowStatus f = Expect.NoCow(file);
            Assert.Equal((FileItemType.File, FileSystemKind.Btrfs, true, true, true, false, false), (f.ItemType, f.FileSystem, f.Supported, f.IsNoCow, f.DirectoryIsNoCow, f.MountNoDataCow, f.IsCompressed));
            Assert.Equal(256 * 1024, f.Size);
            Assert.Equal((0L, 0L), (f.SharedBytes, f.SharedExtentCount));
            Assert.Equal("NOCOW: writes go in place (no checksums, no compression).", f.ReasonText);

            NoCowStatus d = Expect.NoCow(dir);
            Assert.Equal((FileItemType.Directory, true, 0L), (d.ItemType, d.IsNoCow, d.Size));
            Assert.StartsWith("NOCOW directory: files created in it from now on are NOCOW", d.ReasonText);
        }

        [SkippableFact]
        public void ACowFileInANoCowDirectoryIsFalseAndSaysWhy()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "late");
            string file = Path.Combine(dir, "db.sqlite");
            FileBuilder.Chunks(file, 2, 4096, 4096);
            Shell.Run("chattr", "+C", dir); // marked after the file existed

            Assert.False(Plain(file));
            NoCowStatus s = Expect.NoCow(file);
            Assert.False(s.IsNoCow);
            Assert.True(s.DirectoryIsNoCow);
            Assert.Equal("COW file in a NOCOW directory (made before the directory was marked, moved in, or made COW with ConvertFrom-NoCow); ConvertTo-NoCow makes it NOCOW.", s.ReasonText);
        }

        [SkippableFact]
        public void PlainCowFileEmptyCowFileAndCowDirectoryEachHaveTheirReason()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "cow");
            string file = Path.Combine(dir, "data.bin");
            FileBuilder.Chunks(file, 2, 4096, 4096);
            string empty = Path.Combine(dir, "empty.bin");
            FileBuilder.WriteNew(empty, Array.Empty<byte>());

            Assert.Equal("COW file: every write goes to new extents (checksummed); use ConvertTo-NoCow to make it NOCOW.", Expect.NoCow(file).ReasonText);
            Assert.Equal("COW file, still empty: Set-NoCow makes it NOCOW now (once it has data, only ConvertTo-NoCow can).", Expect.NoCow(empty).ReasonText);
            NoCowStatus d = Expect.NoCow(dir);
            Assert.False(d.IsNoCow);
            Assert.Equal("COW directory: new files in it are COW; use Set-NoCow to mark it, so new files are NOCOW.", d.ReasonText);
        }

        [SkippableFact]
        public void InAReadOnlySnapshotOrMountTheReasonSaysItCannotBeChangedThereNotWhatWouldChangeIt()
        {
            // A hostile test: a COW file in a read-only snapshot was told "use ConvertTo-NoCow", which then refused it.
            string dir = fs.NewDirectory(TestFs.Btrfs, "ro-reason");
            string sv = Path.Combine(dir, "sv");
            Shell.Run("btrfs", "subvolume", "create", sv);
            FileBuilder.Chunks(Path.Combine(sv, "data.bin"), 2, 4096, 4096);
            FileBuilder.WriteNew(Path.Combine(sv, "empty.bin"), Array.Empty<byte>());
            Directory.CreateDirectory(Path.Combine(sv, "sub"));
            Directory.CreateDirectory(Path.Combine(sv, "nocow"));
            Shell.Run("chattr", "+C", Path.Combine(sv, "nocow"));
            string snap = Path.Combine(dir, "sv-ro");
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", sv, snap);
            string id = Shell.Run("btrfs", "inspect-internal", "rootid", snap).Trim();
            string where = $"it cannot be changed here: it is in the read-only snapshot or subvolume 'sv-ro' (id {id}).";

            Assert.Equal("COW file: every write goes to new extents (checksummed); " + where, Expect.NoCow(Path.Combine(snap, "data.bin")).ReasonText);
            Assert.Equal("COW file, still empty; " + where, Expect.NoCow(Path.Combine(snap, "empty.bin")).ReasonText);
            Assert.Equal("COW directory: new files in it are COW; " + where, Expect.NoCow(Path.Combine(snap, "sub")).ReasonText);
            Assert.StartsWith("NOCOW directory: ", Expect.NoCow(Path.Combine(snap, "nocow")).ReasonText); // nothing to change
            Assert.Equal("COW file: every write goes to new extents (checksummed); use ConvertTo-NoCow to make it NOCOW.", Expect.NoCow(Path.Combine(sv, "data.bin")).ReasonText); // the writable one as before

            // What the advice would have led to: refused there.
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Confirm:$false", ("f", Path.Combine(snap, "data.bin")));
            Assert.Equal("ReadOnlySnapshot,Btrfs.Commands.ConvertToNoCowCommand", Assert.Single(r.Errors).FullyQualifiedErrorId);

            using ExtraFileSystem ro = fs.NewFileSystem("btrfs", "256M");
            string file = Path.Combine(ro.MountPoint, "data.bin");
            FileBuilder.Chunks(file, 2, 4096, 4096);
            Shell.Run("mount", "-o", "remount,ro", ro.MountPoint);
            try
            {
                Assert.Equal("COW file: every write goes to new extents (checksummed); it cannot be changed here: it is on a read-only mount.", Expect.NoCow(file).ReasonText);
            }
            finally
            {
                Shell.Run("mount", "-o", "remount,rw", ro.MountPoint);
            }
        }

        [SkippableFact]
        public void SharedBytesOfANoCowFileMatchFiemapAndTheReasonWarnsOfTheCopy()
        {
            string dir = NoCowDirectory("shared");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 8, 128 * 1024, 256 * 1024);
            Shell.Run("cp", "--reflink=always", file, Path.Combine(dir, "backup.img"));
            Shell.Run("sync");

            var truth = Filefrag.Extents(file).Where(e => e.Flags.Contains("shared")).ToList();
            Assert.NotEmpty(truth);
            NoCowStatus s = Expect.NoCow(file);
            Assert.True(s.IsNoCow);
            Assert.Equal(truth.Sum(e => e.Length), s.SharedBytes);
            Assert.Equal(truth.Count, s.SharedExtentCount);
            Assert.Equal($"NOCOW, but {SizeFormatter.Format(s.SharedBytes)} is shared with a reflink or snapshot: the next write to those ranges is copied once.", s.ReasonText);
            Assert.True(Plain(file)); // the attribute is there: the boolean says so, the reason says the rest
        }

        [SkippableFact]
        public void AFileMadeOnANodatasumMountIsReportedWithoutChecksumsOrCompression()
        {
            // Before: "checksummed and compressed" and IsCompressed True for a file whose inode has NODATASUM, which btrfs
            // never compresses (inode_can_compress), even under compress-force: compsize and the inode item are the truth.
            using ExtraFileSystem extra = fs.NewFileSystem("btrfs", "256M");
            Shell.Run("umount", extra.MountPoint);
            Shell.Run("mount", "-o", "loop,nodatasum", extra.Image, extra.MountPoint);
            string bare = Path.Combine(extra.MountPoint, "bare.img");
            FileBuilder.WriteNew(bare, new byte[1 << 20]);
            Shell.Run("mount", "-o", "remount,compress-force=zstd", extra.MountPoint);
            string summed = Path.Combine(extra.MountPoint, "summed.img");
            FileBuilder.WriteNew(summed, new byte[1 << 20]);
            File.AppendAllText(bare, new string('x', 1 << 20)); // written under compress-force too
            Shell.Run("sync");
            Assert.Contains("NODATASUM", Shell.Run("btrfs", "inspect-internal", "dump-tree", "-t", "5", extra.Image), StringComparison.Ordinal);
            Assert.Equal(new[] { "none" }, BtrfsProgs.Compsize(bare).Rows.Keys.Where(k => k != "TOTAL").ToArray());
            Assert.Contains("zstd", BtrfsProgs.Compsize(summed).Rows.Keys);

            NoCowStatus b = Expect.NoCow(bare);
            Assert.Equal((false, false), (b.IsNoCow, b.IsCompressed));
            Assert.Equal("COW file without checksums or compression (its inode has NODATASUM: it was made while the filesystem was mounted nodatasum): every write goes to new extents; use ConvertTo-NoCow to make it NOCOW.", b.ReasonText);
            NoCowStatus c = Expect.NoCow(summed);
            Assert.Equal((false, true), (c.IsNoCow, c.IsCompressed));
            Assert.Contains("checksummed and compressed (compress-force=zstd", c.ReasonText, StringComparison.Ordinal);

            // The tree's item lags behind the inode until the next commit: an empty NOCOW file (NODATASUM in the tree,
            // committed) made COW a moment ago is not described by the old item (a review: IsCompressed False until a sync).
            string late = Path.Combine(extra.MountPoint, "late.img");
            File.WriteAllBytes(late, Array.Empty<byte>());
            Shell.Run("chattr", "+C", late);
            Shell.Run("sync");
            Shell.Run("chattr", "-C", late);
            NoCowStatus l = Expect.NoCow(late);
            Assert.Equal((false, true), (l.IsNoCow, l.IsCompressed));
            Assert.DoesNotContain("NODATASUM", l.ReasonText, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ANodatacowMountGivesNewFilesNoCowAndIsReported()
        {
            using ExtraFileSystem extra = fs.NewFileSystem("btrfs", "256M");
            string old = Path.Combine(extra.MountPoint, "old.img");
            FileBuilder.Chunks(old, 2, 4096, 4096);
            extra.Remount(readOnly: false);
            Shell.Run("umount", extra.MountPoint);
            Shell.Run("mount", "-o", "loop,nodatacow", extra.Image, extra.MountPoint);
            string fresh = Path.Combine(extra.MountPoint, "new.img");
            FileBuilder.Chunks(fresh, 2, 4096, 4096);

            NoCowStatus n = Expect.NoCow(fresh);
            Assert.True(n.MountNoDataCow);
            Assert.True(n.IsNoCow);
            NoCowStatus o = Expect.NoCow(old);
            Assert.True(o.MountNoDataCow);
            Assert.False(o.IsNoCow);
            Assert.Equal("COW file on a nodatacow mount: it was created before the mount option was in effect, copied in with its attributes, or made COW since (chattr -C, ConvertFrom-NoCow); ConvertTo-NoCow makes it NOCOW.", o.ReasonText);
            NoCowStatus d = Expect.NoCow(extra.MountPoint);
            Assert.Equal("COW directory on a nodatacow mount: new files in it are NOCOW anyway, because of the mount option.", d.ReasonText);

            // The boolean agrees with the reason: new files in the directory are NOCOW (before: False). Found by a
            // hostile review. The files' answers are their attributes.
            Assert.Equal((false, true), (d.IsNoCow, d.NoCowInEffect));
            Assert.True(Plain(extra.MountPoint));
            Assert.True(Plain(fresh));

            // Set-NoCow -Disable there says that new files stay NOCOW, once per filesystem (before: "already COW; nothing
            // to do", and nothing else; a hostile review). Setting it says nothing.
            string sub = Directory.CreateDirectory(Path.Combine(extra.MountPoint, "sub")).FullName;
            Shell.Run("chattr", "-C", sub);
            PwshResult disable = Pwsh.Run("Set-NoCow -LiteralPath $m, $s -Disable", ("m", extra.MountPoint), ("s", sub));
            Assert.Empty(disable.Errors);
            Assert.Contains("mounted with nodatacow", Assert.Single(disable.Warnings).Message, StringComparison.Ordinal);
            Assert.Empty(Pwsh.Run("Set-NoCow -LiteralPath $s; Set-NoCow -LiteralPath $s -Disable", ("s", fs.NewDirectory(TestFs.Btrfs, "cow-mount"))).Warnings);
            Assert.False(Plain(old));

            // The -Detailed table's NoCow column is that answer too (before: the attribute, False beside that reason).
            PwshResult table = Pwsh.Run("Test-NoCow -LiteralPath $d -Detailed | Out-Host", new Dictionary<string, object?> { ["d"] = extra.MountPoint }, captureHost: true);
            string row = table.HostText.Split('\n').First(l => l.Contains("COW directory", StringComparison.Ordinal));
            Assert.StartsWith("True ", row.TrimStart(), StringComparison.Ordinal);

            // A directory with the compression attribute, or the compression property, on that mount: its new files get
            // it and NOCOW both, and NOCOW wins (lsattr shows c and C; compsize: nothing compressed). The directory's
            // answer says so (before: False, "new files in it are compressed"). Found by a hostile review.
            foreach (string mark in new[] { "attribute", "property" })
            {
                string dir = Directory.CreateDirectory(Path.Combine(extra.MountPoint, mark)).FullName;
                if (mark == "attribute")
                {
                    Shell.Run("chattr", "+c", dir);
                }
                else
                {
                    Shell.Run("btrfs", "property", "set", dir, "compression", "zstd");
                }

                string made = Path.Combine(dir, "made.log");
                FileBuilder.WriteNew(made, System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("compressible line\n", 65536))));
                Shell.Run("sync");
                Assert.Contains("C", Shell.Run("lsattr", made).Split(' ')[0], StringComparison.Ordinal);
                Assert.Matches(@"(?m)^none\s+100%", Shell.Run("compsize", made));
                NoCowStatus c = Expect.NoCow(dir);
                Assert.True(c.NoCowInEffect, mark);
                Assert.False(c.IsCompressed, mark);
                Assert.Contains("new files in it are NOCOW anyway", c.ReasonText, StringComparison.Ordinal);
                Assert.True(Plain(dir));
                Assert.True(Plain(made));
            }
        }

        [SkippableFact]
        public void ACompressMountCompressesCowFilesAndNeverNoCowOnes()
        {
            string dir = fs.NewDirectory(TestFs.BtrfsZstd, "zstd");
            string cow = Path.Combine(dir, "text.log");
            FileBuilder.WriteNew(cow, System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("compressible line\n", 4096))));
            string nocowDir = Directory.CreateDirectory(Path.Combine(dir, "nocow")).FullName;
            Shell.Run("chattr", "+C", nocowDir);
            string nocow = Path.Combine(nocowDir, "vm.img");
            FileBuilder.Chunks(nocow, 2, 4096, 4096);

            NoCowStatus c = Expect.NoCow(cow);
            Assert.True(c.IsCompressed);
            Assert.Equal("COW file: every write goes to new extents (checksummed and compressed (compress=zstd:3)); use ConvertTo-NoCow to make it NOCOW.", c.ReasonText);
            NoCowStatus n = Expect.NoCow(nocow);
            Assert.True(n.IsNoCow);
            Assert.False(n.IsCompressed); // before: True, beside a reason saying it is not compressed (a newcomer review)

            // "Do not compress" beats the mount option (before: True; a hostile review).
            string none = Path.Combine(dir, "none.log");
            FileBuilder.WriteNew(none, Array.Empty<byte>());
            Shell.Run("btrfs", "property", "set", none, "compression", "none");
            FileBuilder.WriteAt(none, 0, System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("compressible line\n", 4096))));
            Assert.False(Expect.NoCow(none).IsCompressed);
            Assert.Equal("NOCOW: writes go in place (no checksums, no compression). The compress=zstd:3 mount option does not apply to NOCOW files.", n.ReasonText);
        }

        [SkippableFact]
        public void TheCompressionAttributeIsReported()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "attr-c");
            string file = Path.Combine(dir, "c.bin");
            FileBuilder.WriteNew(file, Array.Empty<byte>());
            Shell.Run("chattr", "+c", file);
            FileBuilder.WriteAt(file, 0, FileBuilder.RandomBytes(8192, 3));
            NoCowStatus s = Expect.NoCow(file);
            Assert.True(s.IsCompressed);
            Assert.Equal("COW file with the compression attribute (chattr +c): NOCOW and compression exclude each other; clear +c, then use ConvertTo-NoCow.", s.ReasonText);
        }

        [SkippableTheory]
        [InlineData((int)TestFs.Xfs, "xfs has no NOCOW attribute; it writes in place except where extents are shared.")]
        [InlineData((int)TestFs.Ext4, "ext4 has no NOCOW attribute; it always writes in place (it has no copy-on-write).")]
        [InlineData((int)TestFs.Tmpfs, "tmpfs has no NOCOW attribute; it keeps files in memory.")]
        public void OtherFilesystemsAreFalseWithoutAnError(int which, string reason)
        {
            string dir = fs.NewDirectory((TestFs)which, "other");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 2, 4096, 4096);

            Assert.False(Plain(file));
            Assert.False(Plain(dir));
            NoCowStatus s = Expect.NoCow(file);
            Assert.False(s.Supported);
            Assert.False(s.IsNoCow);
            Assert.Equal(reason, s.ReasonText);
        }

        [SkippableFact]
        public void AReflinkedXfsFileNamesItsSharedBytes()
        {
            string dir = fs.NewDirectory(TestFs.Xfs, "xfs-shared");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 4, 64 * 1024, 64 * 1024);
            Shell.Run("cp", "--reflink=always", file, file + ".copy");
            NoCowStatus s = Expect.NoCow(file);
            Assert.Equal(256 * 1024, s.SharedBytes);
            Assert.Equal("xfs has no NOCOW attribute; it writes in place except where extents are shared (256 KiB of this file is shared with a reflink copy).", s.ReasonText);
        }

        [SkippableFact]
        public void AFifoIsAnErrorWithoutHangingAndTheNextPathIsAnswered()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "fifo");
            string fifo = Path.Combine(dir, "pipe");
            Shell.Run("mkfifo", fifo);
            string good = Path.Combine(dir, "good.img");
            FileBuilder.Chunks(good, 1, 4096, 4096);

            Task<PwshResult> t = Task.Run(() => Pwsh.Run("Test-NoCow -LiteralPath $a, '/dev/null', $b", ("a", fifo), ("b", good)));
            Assert.True(t.Wait(TimeSpan.FromSeconds(60)), "Test-NoCow hung on a FIFO");
            PwshResult r = t.Result;
            Assert.Equal(new[] { "NotRegularFile", "NotRegularFile" }, r.ErrorIds);
            Assert.Equal(fifo, r.Errors[0].TargetObject);
            Assert.Equal(ErrorCategory.InvalidArgument, r.Errors[0].CategoryInfo.Category);
            Assert.Equal("Btrfs.Commands.TestNoCowCommand", r.Errors[0].FullyQualifiedErrorId.Split(',')[1]);
            Assert.Equal(new[] { false }, r.Objects<bool>());
        }

        [SkippableFact]
        public void AMissingPathIsAnErrorNotFalse()
        {
            string missing = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "missing"), "nope.img");
            PwshResult r = Pwsh.Run("Test-NoCow -LiteralPath $p", ("p", missing));
            Assert.Equal(new[] { "PathNotFound" }, r.ErrorIds);
            Assert.Empty(r.Output);
        }

        [SkippableFact]
        public void TestNoCowChangesNothing()
        {
            string dir = NoCowDirectory("readonly");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 3, 4096, 8192);
            FileFacts before = FileFacts.Of(file);
            Pwsh.Run("Test-NoCow -LiteralPath $p; Test-NoCow -LiteralPath $p -Detailed", ("p", file));
            Assert.Equal(before, FileFacts.Of(file));
        }

        [SkippableFact]
        public void PipedFromPathObjectsAndPsPathBindingWork()
        {
            string dir = NoCowDirectory("pipe");
            string a = Path.Combine(dir, "a.img");
            string b = Path.Combine(dir, "b.img");
            FileBuilder.Chunks(a, 1, 4096, 4096);
            FileBuilder.Chunks(b, 1, 4096, 4096);
            PwshResult r = Pwsh.Run(
                "[pscustomobject]@{ PSPath = $a }, [pscustomobject]@{ PSPath = $b } | Test-NoCow -Detailed | Test-NoCow",
                ("a", a),
                ("b", b));
            Assert.Empty(r.Errors);
            Assert.Equal(new[] { true, true }, r.Objects<bool>());
        }

        [SkippableFact]
        public void TheTableViewShowsReadableSizesAndTheReason()
        {
            string dir = NoCowDirectory("view");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 2, 64 * 1024, 64 * 1024);
            PwshResult r = Pwsh.Run("Test-NoCow -LiteralPath $p -Detailed | Out-Host", new System.Collections.Generic.Dictionary<string, object?> { ["p"] = file }, captureHost: true);
            Assert.Empty(r.Errors);
            foreach (string part in new[] { "NoCow", "Type", "Shared", "Reason", "True", "File", "128 KiB", "Directory: " + dir, "vm.img", "NOCOW:" })
            {
                Assert.Contains(part, r.HostText, StringComparison.Ordinal);
            }

            Assert.DoesNotContain("131072", r.HostText, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void EveryPropertyIsAScalarThatSurvivesSerialization()
        {
            string dir = NoCowDirectory("scalar");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 1, 4096, 4096);
            PwshResult r = Pwsh.Run(
                "$s = Test-NoCow -LiteralPath $p -Detailed; $x = [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize($s)); " +
                "$s.PSObject.Properties | ForEach-Object { '{0}={1}' -f $_.Name, $_.Value.GetType().Name }; $x.PSObject.TypeNames[0]; $x.Size.GetType().Name; [string]$x.ItemType; $x.IsNoCow; $x.ReasonText",
                ("p", file));
            Assert.Empty(r.Errors);
            string[] lines = r.Output.Select(o => o.ToString()).ToArray();
            Assert.Contains("Size=Int64", lines);
            Assert.Contains("SharedBytes=Int64", lines);
            Assert.Contains("IsNoCow=Boolean", lines);
            Assert.Contains("ItemType=FileItemType", lines);
            Assert.Contains("FileSystem=FileSystemKind", lines);
            Assert.Contains("Reason=String[]", lines); // one rule per element (ReasonText joins them for CSV)
            Assert.Contains("ReasonText=String", lines);
            Assert.Contains("Name=String", lines);
            string[] properties = lines.Where(l => l.Contains('=', StringComparison.Ordinal)).ToArray();
            Assert.Contains("Directory=String", lines); // what the view groups by
            Assert.Equal(19, properties.Length); // 15 of the type, 3 aliases the view shows (NoCow, Type, Shared), Directory
            Assert.Contains("NoCowInEffect=Boolean", lines);
            Assert.All(properties.Where(l => !l.StartsWith("Reason=", StringComparison.Ordinal)), l => Assert.DoesNotContain("[]", l, StringComparison.Ordinal));
            int at = Array.IndexOf(lines, "Deserialized.Btrfs.Core.NoCowStatus");
            Assert.True(at > 0);
            Assert.Equal(new[] { "Int64", "File", "True" }, lines[(at + 1)..(at + 4)]);
            Assert.StartsWith("NOCOW: writes go in place", lines[at + 4], StringComparison.Ordinal);
        }
    }
}
