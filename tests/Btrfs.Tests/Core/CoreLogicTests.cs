namespace Btrfs.Tests
{
    using System.Collections.Generic;
    using System.Linq;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Xunit;

    /// <summary>Pure logic: hole insertion, size formatting, filesystem classification.</summary>
    public class CoreLogicTests
    {
        private static RawExtent E(ulong logical, ulong length) => new(logical, 1000 + logical, length, 0);

        [Fact]
        public void AFileUsageNeverShowsMoreSharedBytesThanItsSize()
        {
            // The extent map is read after the size: a file truncated in between showed Size 0, SharedBytes 1253376 (a
            // hostile review). What is shown stays within the size shown.
            Assert.Equal(0, new BtrfsFileUsage("/x", 0, UsageCounters.For(null), 1253376).SharedBytes);
            Assert.Equal(7786496, new BtrfsFileUsage("/x", 7786496, UsageCounters.For(null), 9814016).SharedBytes);
            Assert.Equal(4096, new BtrfsFileUsage("/x", 7786496, UsageCounters.For(null), 4096).SharedBytes);
        }

        [Fact]
        public void ADedupeThatFailedPartWaySaysWhatItDeduplicatedBeforeNotThatTheDestinationIsUnchanged()
        {
            // Before: "The destination is unchanged" after 32 MiB of it had been deduplicated (a hostile review: a file
            // truncated while a group ran).
            var none = new DedupeResult { Source = "/s", Destination = "/d", Status = DedupeStatus.Error, ErrorMessage = "It failed.", Errno = Errno.EINVAL };
            Assert.EndsWith("It failed. The destination is unchanged.", none.Error!.Message, System.StringComparison.Ordinal);
            var some = new DedupeResult { Source = "/s", Destination = "/d", Status = DedupeStatus.Error, ErrorMessage = "It failed.", Errno = Errno.EINVAL, BytesDeduped = 33554432 };
            Assert.EndsWith("It failed. Before that, 33554432 bytes of it were deduplicated (they share the source's extents now); the rest is as it was. Its data is unchanged.", some.Error!.Message, System.StringComparison.Ordinal);
            Assert.DoesNotContain("is unchanged.", some.Error.Message.Replace("data is unchanged.", string.Empty, System.StringComparison.Ordinal), System.StringComparison.Ordinal);
            Assert.Null(new DedupeResult { Status = DedupeStatus.Deduped, BytesDeduped = 1 }.Error);
        }

        [Fact]
        public void HolesFillLeadingInnerAndTrailingGaps()
        {
            var extents = new[] { E(4096, 4096), E(16384, 8192) };
            List<Segment> s = HoleFinder.Insert(extents, 0, 32768).ToList();
            Assert.Equal(
                new[] { (0ul, 4096ul, true), (4096ul, 4096ul, false), (8192ul, 8192ul, true), (16384ul, 8192ul, false), (24576ul, 8192ul, true) },
                s.Select(x => (x.Extent.Logical, x.Extent.Length, x.IsHole)).ToArray());
        }

        [Fact]
        public void NoHolesForContiguousExtentsUpToTheLimit()
        {
            var extents = new[] { E(0, 4096), E(4096, 4096) };
            Assert.DoesNotContain(HoleFinder.Insert(extents, 0, 8192), s => s.IsHole);
        }

        [Fact]
        public void AFileWithoutExtentsIsOneHole()
        {
            Segment only = Assert.Single(HoleFinder.Insert(System.Array.Empty<RawExtent>(), 0, 1 << 20));
            Assert.True(only.IsHole);
            Assert.Equal((0ul, 1ul << 20), (only.Extent.Logical, only.Extent.Length));
        }

        [Fact]
        public void HolesAreClippedToTheRequestedRange()
        {
            // Range [6000, 20000) of a file whose extents are [4096,8192) and [16384,24576): one inner hole only.
            var extents = new[] { E(4096, 4096), E(16384, 8192) };
            ulong limit = HoleFinder.HoleLimit(6000, 14000, 1 << 20);
            Assert.Equal(20000ul, limit);
            var holes = HoleFinder.Insert(extents, 6000, limit).Where(s => s.IsHole).Select(s => (s.Extent.Logical, s.Extent.Length)).ToArray();
            Assert.Equal(new[] { (8192ul, 8192ul) }, holes);
        }

        [Fact]
        public void GapsBetweenExtentsPastTheEndAreHolesToo()
        {
            // 1 MiB of data, and 1 MiB preallocated at 10 MiB and at 20 MiB past the end (fallocate -n): before, no hole
            // between them, and the map left 18 MiB uncovered (a hostile test). Still no hole after the last one.
            const ulong M = 1 << 20;
            var extents = new[] { E(0, M), E(10 * M, M), E(20 * M, M) };
            Assert.Equal(
                new[] { (0ul, M, false), (M, 9 * M, true), (10 * M, M, false), (11 * M, 9 * M, true), (20 * M, M, false) },
                HoleFinder.Insert(extents, 0, HoleFinder.HoleLimit(0, ulong.MaxValue, M)).Select(x => (x.Extent.Logical, x.Extent.Length, x.IsHole)).ToArray());
        }

        [Fact]
        public void PreallocatedSpaceBeyondEofMakesNoTrailingHole()
        {
            // An extent past the file size (fallocate --keep-size): holes stop at EOF.
            var extents = new[] { E(0, 4096), E(4096, 1 << 20) };
            Assert.DoesNotContain(HoleFinder.Insert(extents, 0, HoleFinder.HoleLimit(0, ulong.MaxValue, 4096)), s => s.IsHole);
        }

        [Theory]
        [InlineData(0L, "0 B")]
        [InlineData(1023L, "1023 B")]
        [InlineData(1024L, "1.00 KiB")]
        [InlineData(4096L, "4.00 KiB")]
        [InlineData(12800L, "12.5 KiB")]
        [InlineData(131072L, "128 KiB")]
        [InlineData(1048575L, "1.00 MiB")]
        [InlineData(1073741824L, "1.00 GiB")]
        [InlineData(5497558138880L, "5.00 TiB")]
        [InlineData(long.MaxValue, "8.00 EiB")]
        [InlineData(-2048L, "-2.00 KiB")]
        public void SizesAreHumanReadableBinaryUnits(long bytes, string expected) => Assert.Equal(expected, SizeFormatter.Format(bytes));

        [Theory]
        [InlineData(0x9123683EL, 1 /* Btrfs */, "btrfs")]
        [InlineData(unchecked((long)0xFFFFFFFF9123683EUL), 1 /* Btrfs */, "btrfs")]
        [InlineData(0x58465342L, 2 /* Xfs */, "xfs")]
        [InlineData(0xEF53L, 3 /* Ext4 */, "ext4")]
        [InlineData(0x01021994L, 4 /* Tmpfs */, "tmpfs")]
        [InlineData(0x12345678L, 0 /* Other */, "a filesystem with magic 0x12345678")]
        // Kinds are ints in the attributes: xunit reads attributes before the module initializer can point it at bin/Btrfs.dll.
        public void FileSystemsAreClassifiedByMagic(long magic, int kind, string name)
        {
            FileSystemType t = FileSystemType.FromMagic(magic);
            Assert.Equal((FileSystemKind)kind, t.Kind);
            Assert.Equal(name, t.DisplayName);
        }

        [Fact]
        public void ExtentsAreCutToTheRequestedRange()
        {
            var e = new RawExtent(4096, 1_000_000, 8192, 0);
            Assert.Equal(new RawExtent(6000, 1_001_904, 4000, 0), Fiemap.ClipToRange(e, 6000, 10000));
            Assert.Equal(e, Fiemap.ClipToRange(e, 0, ulong.MaxValue));
            Assert.Equal(new RawExtent(4096, 1_000_000, 1000, 0), Fiemap.ClipToRange(e, 0, 5096));
        }

        [Theory]
        [InlineData(0x8u)] // ENCODED: the physical address is the compressed extent's, not byte-addressable
        [InlineData(0x2u | 0x4u)] // UNKNOWN | DELALLOC
        [InlineData(0x100u | 0x200u)] // NOT_ALIGNED | DATA_INLINE
        public void CuttingKeepsPhysicalWhenItIsNotByteAddressed(uint flags)
        {
            var e = new RawExtent(0, 1_000_000, 131072, (ExtentFlags)flags);
            Assert.Equal(new RawExtent(65536, 1_000_000, 65536, (ExtentFlags)flags), Fiemap.ClipToRange(e, 65536, ulong.MaxValue));
        }

        [Fact]
        public void ReasonsWrapOnWordsAtTheColumnWidthOneRulePerLine()
        {
            string text = Btrfs.Commands.TextLayout.Wrap(new[] { "NOCOW, but 16.0 MiB is shared with a reflink or snapshot: the next write to those ranges is copied once.", "second rule" }, 22);
            string[] lines = text.Split('\n');
            Assert.All(lines, l => Assert.True(l.Length <= 22, l));
            Assert.Equal("NOCOW, but 16.0 MiB is", lines[0]);
            Assert.Equal("second rule", lines[^1]);
            string[] words = string.Join(' ', lines).Split(' ');
            Assert.Equal("NOCOW, but 16.0 MiB is shared with a reflink or snapshot: the next write to those ranges is copied once. second rule".Split(' '), words);
            Assert.Equal(new[] { "abcdefgh", "ijkl" }, Btrfs.Commands.TextLayout.Wrap("abcdefghijkl", 8).Split('\n'));
        }

        [Fact]
        public void AnOffsetHasSeparatorsOnlyWhereTheyFitItsColumn()
        {
            System.Globalization.CultureInfo saved = System.Globalization.CultureInfo.CurrentCulture;
            System.Globalization.CultureInfo.CurrentCulture = System.Globalization.CultureInfo.InvariantCulture;
            try
            {
                Assert.Equal("99,999,999,999", Btrfs.Commands.TextLayout.Offset(99_999_999_999, 15));
                Assert.Equal("1099562192896", Btrfs.Commands.TextLayout.Offset(1_099_562_192_896, 15));
                Assert.Equal("1,099,562,192,896", Btrfs.Commands.TextLayout.Offset(1_099_562_192_896, 17));
                Assert.Equal("9223372036854775807", Btrfs.Commands.TextLayout.Offset(long.MaxValue, 19));

                // Wider than the column even so: in units, marked approximate (before: cut in two, "46116860184273838" over
                // "08", read as two numbers; a hostile test).
                Assert.Equal("~4.00 EiB", Btrfs.Commands.TextLayout.Offset(1L << 62, 17));
                Assert.Equal("~1.00 PiB", Btrfs.Commands.TextLayout.Offset(1L << 50, 15));
                Assert.Equal("1125899906842624", Btrfs.Commands.TextLayout.Offset(1L << 50, 17));
            }
            finally
            {
                System.Globalization.CultureInfo.CurrentCulture = saved;
            }
        }

        [Fact]
        public void ALongNameIsNeverCutBetweenTheHalvesOfASurrogatePair()
        {
            string name = "abcdefg\U0001F600hij\U0001F4BEkl.img"; // the first emoji's halves are the 8th and 9th characters
            string[] lines = Btrfs.Commands.TextLayout.WrapName(name, 8).Split('\n');
            Assert.Equal(new[] { "abcdefg", "\U0001F600hij\U0001F4BEk", "l.img" }, lines);
            Assert.Equal(name, string.Concat(lines));
            Assert.All(lines, l => Assert.True(l.Length <= 8, l));
        }
    }
}
