namespace Btrfs.Tests
{
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Xunit;

    /// <summary>Pure logic behind the NOCOW cmdlets: the mountinfo parser and the reason sentences' precedence.</summary>
    public class CoreNoCowLogicTests
    {
        private static FileSystemType Btrfs => FileSystemType.FromMagic(0x9123683E);

        [Fact]
        public void ARunKnowsItsOwnHiddenNamesAndNoOneElses()
        {
            // A walk that meets a hidden name this run gave a file in its grace skips it; everything else
            // is processed, names of the same pattern from other runs included.
            using var session = new RewriteSession();
            Assert.False(session.IsOwnTemporaryName(".vm.img.~btrfs-1234-0badc0de")); // no stamp drawn yet: nothing is its own
            string stamp = session.Stamp;
            Assert.Matches(@"^\d+-[0-9a-f]{8}$", stamp);
            Assert.True(session.IsOwnTemporaryName(TemporaryFile.HiddenName("vm.img", TemporaryFile.Marker, stamp)));
            Assert.True(session.IsOwnTemporaryName(TemporaryFile.HiddenName(new string('n', 250), TemporaryFile.Marker, stamp)));
            Assert.False(session.IsOwnTemporaryName(TemporaryFile.HiddenName("vm.img", TemporaryFile.Marker, TemporaryFile.NewStamp())));
            Assert.False(session.IsOwnTemporaryName("vm.img" + TemporaryFile.Marker + stamp)); // not hidden
            Assert.False(session.IsOwnTemporaryName(".vm.img" + TemporaryFile.Marker + stamp + ".bak"));
        }

        [Fact]
        public void AnOverlaysLayersAreReadAsTheKernelPrintsThem()
        {
            // Only the legacy lowerdir= is a ':'-separated list (a ':' in a layer escaped as "\:"); lowerdir+=,
            // datadir+=, upperdir= and workdir= are one path each, printed raw. Before: "/t/lo:x" was read as
            // "/t/lo", which did not exist, and every subvolume deletion was refused.
            MountTable t = MountTable.Parse(
                "50 27 0:45 / /m1 rw - overlay overlay rw,lowerdir=/l1:/l\\:2,upperdir=/u,workdir=/w\n" +
                "51 27 0:46 / /m2 rw - overlay overlay rw,lowerdir+=/t/lo:x,datadir+=/d:1,upperdir=/u:1,workdir=/w\\040x\n");
            Assert.Equal(new[] { "/l1", "/l:2", "/u", "/w" }, t.ById(50)!.OverlayLayers());
            Assert.Equal(new[] { "/t/lo:x", "/d:1", "/u:1", "/w x" }, t.ById(51)!.OverlayLayers());
        }

        /// <summary>
        /// mountinfo lists mounts in the order they were made; `mount --move` makes that differ from how they are
        /// stacked. Before: the last listed at the deepest mount point was taken as the one a path is on, so a btrfs
        /// moved on top of a FUSE mount (listed first) was taken for the FUSE mount (its active swapfile was not
        /// looked up, and escaped the swap checks), and a FUSE mount moved on top of a btrfs was taken for the btrfs
        /// (and looked up: every swap check hung on it). A mount stacked on a directory's mount also hides the
        /// mounts below on deeper points.
        /// </summary>
        [Fact]
        public void APathIsOnTheMountALookupReachesNotTheLastListed()
        {
            MountTable t = MountTable.Parse(
                "26 1 8:1 / / rw - ext4 /dev/sda1 rw\n" +
                "47 48 0:39 / /m/t rw - btrfs /dev/loop0 rw\n" + // moved onto the FUSE mount below: on top, listed first
                "48 26 0:42 / /m/t rw - fuse.deadfs deadfs rw\n" +
                "50 51 0:43 / /m/u rw - fuse.deadfs deadfs rw\n" + // made first elsewhere, moved onto the btrfs bind mount below
                "51 26 0:39 / /m/u rw - btrfs /dev/loop0 rw\n" +
                "60 26 0:39 / /m/v rw - btrfs /dev/loop0 rw\n" +
                "61 60 0:44 / /m/v/deep rw - tmpfs tmpfs rw\n" + // on the btrfs at /m/v ...
                "62 60 0:45 / /m/v rw - ext4 /dev/sdb1 rw\n" + // ... which this one covers, /m/v/deep included
                "70 26 0:46 / /m/a/b rw - tmpfs tmpfs rw\n" + // hidden by the one mounted later on /m/a
                "71 26 0:47 / /m/a rw - tmpfs tmpfs rw\n");
            Assert.Equal(47UL, t.Covering("/m/t/sv/swap")!.MountId);
            Assert.Equal("fuse.deadfs", t.Covering("/m/u/swap2")!.FileSystemType);
            Assert.Equal(62UL, t.Covering("/m/v/deep/x")!.MountId);
            Assert.Equal(26UL, t.Covering("/m/x")!.MountId);
            Assert.Equal(71UL, t.Covering("/m/a/b/f")!.MountId);
            Assert.Equal(47UL, MountTable.Deepest(t.Entries, "/m/t/sv/swap")!.MountId);
        }

        [Fact]
        public void MountinfoLinesParseWithOptionalFieldsAndEscapes()
        {
            const string text =
                "43 27 0:39 / /tmp/exp/m rw,relatime shared:1 master:2 - btrfs /dev/loop0 rw,nodatasum,nodatacow,compress=zstd:3,space_cache=v2,subvolid=5,subvol=/\n" +
                "44 27 0:40 / /mnt/with\\040space ro,relatime - tmpfs tmpfs rw,size=1024k\n";
            MountTable t = MountTable.Parse(text);
            MountEntry a = t.ById(43)!;
            Assert.Equal(("/tmp/exp/m", "btrfs", "/dev/loop0", 0u, 39u), (a.MountPoint, a.FileSystemType, a.Source, a.Major, a.Minor));
            Assert.True(a.HasOption("nodatacow"));
            Assert.Equal("zstd:3", a.Option("compress"));
            Assert.Equal("compress=zstd:3", a.CompressOption);
            Assert.False(a.HasOption("ro"));
            MountEntry b = t.ById(44)!;
            Assert.Equal("/mnt/with space", b.MountPoint);
            Assert.True(b.HasOption("ro"));
            Assert.Null(b.CompressOption);
            Assert.Null(t.ById(1));
        }

        [Fact]
        public void MountInfoPathsKeepCharactersBeyondTheBasicPlaneNextToOctalEscapes()
        {
            // Before: each char was re-encoded alone, so a character beyond U+FFFF (two chars) became U+FFFD
            // whenever the path also held an escape, and a bind mount of such a path was not matched.
            Assert.Equal("/a b\U0001F600/f", MountTable.Unescape("/a\\040b\U0001F600/f"));
            Assert.Equal("/x\ny", MountTable.Unescape("/x\\012y"));
        }

        [Fact]
        public void CompressForceIsNamedAsSuch()
        {
            MountEntry e = MountTable.Parse("1 0 0:1 / /m rw - btrfs /dev/x rw,compress-force=zstd:1\n").ById(1)!;
            Assert.Equal("compress-force=zstd:1", e.CompressOption);
        }

        [Fact]
        public void TheReasonOfAFileFollowsWhatMattersMost()
        {
            NoCowFacts f = new(FileItemType.File, Btrfs, InodeFlags.None, DirectoryIsNoCow: true, MountNoDataCow: true, null, 4096, 0);
            Assert.StartsWith("COW file in a NOCOW directory", string.Join(" ", NoCowReason.Explain(f)));
            Assert.StartsWith("COW file on a nodatacow mount", string.Join(" ", NoCowReason.Explain(f with { DirectoryIsNoCow = false })));
            Assert.StartsWith("COW file with the compression attribute", string.Join(" ", NoCowReason.Explain(f with { Flags = InodeFlags.Compress })));
            Assert.StartsWith("COW file, still empty", string.Join(" ", NoCowReason.Explain(f with { Size = 0 })));
            Assert.StartsWith("NOCOW, but 3.20 GiB is shared", string.Join(" ", NoCowReason.Explain(f with { Flags = InodeFlags.NoCow, SharedBytes = 3435973837 })));
            Assert.Equal("NOCOW: writes go in place (no checksums, no compression).", string.Join(" ", NoCowReason.Explain(f with { Flags = InodeFlags.NoCow })));
        }

        [Fact]
        public void OtherFilesystemsNameThemselves()
        {
            NoCowFacts f = new(FileItemType.File, FileSystemType.FromMagic(0x6969), InodeFlags.None, false, false, null, 1, 0);
            Assert.Equal("NFS has no NOCOW attribute; only btrfs has one.", string.Join(" ", NoCowReason.Explain(f)));
            NoCowFacts unknown = new(FileItemType.File, FileSystemType.FromMagic(0x12345678), InodeFlags.None, false, false, null, 1, 0);
            Assert.Equal("a filesystem with magic 0x12345678 has no NOCOW attribute; only btrfs has one.", string.Join(" ", NoCowReason.Explain(unknown)));
        }
    }
}
