namespace Btrfs.Tests
{
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Text;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// Get-BtrfsExtent -Exact against `btrfs inspect-internal dump-tree`, which reads the committed
    /// tree from the image itself: every item, field by field, for each kind of layout. Each test has
    /// a filesystem of its own so nothing else commits while the tree is read.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class ExactExtentTests(LoopFileSystems fs)
    {
        private static List<BtrfsExtentItem> Exact(string path, string extra = "")
        {
            PwshResult r = Pwsh.Run($"Get-BtrfsExtent -LiteralPath $p -Exact {extra}", ("p", path));
            Assert.Empty(r.Errors);
            return r.Objects<BtrfsExtentItem>();
        }

        /// <summary>The module's items equal dump-tree's, field by field; returns them.</summary>
        private static List<BtrfsExtentItem> SameAsDumpTree(ExtraFileSystem x, string path)
        {
            List<DumpedItem> truth = BtrfsProgs.Items(x.Image, path);
            List<BtrfsExtentItem> ours = Exact(path);
            Assert.NotEmpty(truth);
            Assert.Equal(truth.Count, ours.Count);
            for (int i = 0; i < truth.Count; i++)
            {
                DumpedItem t = truth[i];
                BtrfsExtentItem o = ours[i];
                Assert.Equal(i, o.Index);
                Assert.Equal(path, o.Path);
                Assert.Equal((long)t.FileOffset, o.LogicalOffset);
                Assert.Equal((long)t.Generation, o.Generation);
                Assert.Equal(t.Type, (int)o.Type);
                Assert.Equal(t.Compression, (int)o.Compression);
                if (t.InlineSize is ulong stored)
                {
                    Assert.Equal(BtrfsExtentType.Inline, o.Type);
                    Assert.Equal((long)stored, o.DiskLength);
                    Assert.Equal((long)t.RamBytes!, o.UncompressedLength);
                    Assert.Equal((long)t.RamBytes!, o.Length);
                    Assert.Equal(0, o.DiskAddress);
                    continue;
                }

                Assert.Equal((long)t.DiskBytenr!, o.DiskAddress);
                Assert.Equal((long)t.DiskNumBytes!, o.DiskLength);
                Assert.Equal((long)t.ExtentOffset!, o.ExtentOffset);
                Assert.Equal((long)t.NumBytes!, o.Length);
                if (t.RamBytes is ulong ram)
                {
                    Assert.Equal((long)ram, o.UncompressedLength);
                }

                Assert.Equal(t.DiskBytenr == 0, o.IsHole);
                Assert.Equal(t.DiskBytenr != 0 && (t.ExtentOffset != 0 || (long)t.NumBytes! != o.UncompressedLength), o.IsBookend);
            }

            return ours;
        }

        [SkippableFact]
        public void PlainFragmentedAndBookendItemsMatchDumpTree()
        {
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "512M");
            string plain = Path.Combine(x.MountPoint, "plain.bin");
            FileBuilder.WriteNew(plain, FileBuilder.RandomBytes(3 << 20, 1));
            List<BtrfsExtentItem> p = SameAsDumpTree(x, plain);
            Assert.All(p, i => Assert.Equal(BtrfsExtentType.Regular, i.Type));

            string frag = Path.Combine(x.MountPoint, "frag.bin");
            FileBuilder.Fragmented(frag, 4 << 20, 60);
            List<BtrfsExtentItem> f = SameAsDumpTree(x, frag);
            Assert.True(f.Count > 20, $"{f.Count} items");

            // Write 1 MiB, commit, overwrite the middle: the old extent is referenced twice, partly each time.
            string bookend = Path.Combine(x.MountPoint, "bookend.bin");
            FileBuilder.WriteNew(bookend, FileBuilder.RandomBytes(1 << 20, 2));
            BtrfsProgs.Sync(bookend);
            FileBuilder.WriteAt(bookend, 256 << 10, FileBuilder.RandomBytes(512 << 10, 3));
            List<BtrfsExtentItem> b = SameAsDumpTree(x, bookend);
            Assert.Equal(3, b.Count);
            Assert.Equal(b[0].DiskAddress, b[2].DiskAddress);
            Assert.True(b[0].IsBookend && b[2].IsBookend && !b[1].IsBookend);
            Assert.Equal(768L << 10, b[2].ExtentOffset);
        }

        [SkippableFact]
        public void PreallocInlineReflinkAndHoleItemsMatchDumpTree()
        {
            using ExtraFileSystem x = fs.NewFileSystem("btrfs-holes", "512M");
            string pre = Path.Combine(x.MountPoint, "pre.img");
            Shell.Run("fallocate", "-l", "4M", pre);
            FileBuilder.WriteAt(pre, 1 << 20, FileBuilder.RandomBytes(64 << 10, 4));
            List<BtrfsExtentItem> p = SameAsDumpTree(x, pre);
            Assert.Contains(p, i => i.Type == BtrfsExtentType.Prealloc);
            Assert.Contains(p, i => i.Type == BtrfsExtentType.Regular && i.DiskAddress == p[0].DiskAddress);

            string small = Path.Combine(x.MountPoint, "small.txt");
            FileBuilder.WriteNew(small, Encoding.ASCII.GetBytes("a small file that btrfs keeps inline in its metadata\n"));
            BtrfsExtentItem inline = Assert.Single(SameAsDumpTree(x, small));
            Assert.Equal(BtrfsExtentType.Inline, inline.Type);

            string src = Path.Combine(x.MountPoint, "src.bin"), dst = Path.Combine(x.MountPoint, "dst.bin");
            FileBuilder.Chunks(src, 3, 256 << 10, 256 << 10);
            Shell.Run("cp", "--reflink=always", src, dst);
            List<BtrfsExtentItem> s = SameAsDumpTree(x, src), d = SameAsDumpTree(x, dst);
            Assert.Equal(s.Select(i => i.DiskAddress), d.Select(i => i.DiskAddress));

            // Without the no-holes feature a sparse file has explicit hole items (disk address 0).
            string sparse = Path.Combine(x.MountPoint, "sparse.img");
            FileBuilder.Chunks(sparse, 3, 64 << 10, 1 << 20);
            List<BtrfsExtentItem> h = SameAsDumpTree(x, sparse);
            Assert.Contains(h, i => i.IsHole);
        }

        [SkippableFact]
        public void CompressedItemsMatchDumpTree()
        {
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "512M", "compress=zstd");
            string text = Path.Combine(x.MountPoint, "log.txt");
            FileBuilder.WriteNew(text, FileBuilder.Text(1 << 20));
            List<BtrfsExtentItem> c = SameAsDumpTree(x, text);
            Assert.Equal(8, c.Count);
            Assert.All(c, i => Assert.Equal(BtrfsCompression.Zstd, i.Compression));
            Assert.All(c, i => Assert.True(i.DiskLength < i.UncompressedLength));
        }

        [SkippableFact]
        public void A200MiBFileThatFiemapShowsAsOneExtentShowsItsItems()
        {
            // mkfs makes an 8 MiB first data chunk: fill it (1 MiB at a time, first fit), so the file lands in one large chunk.
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "4G");
            FileBuilder.Chunks(Path.Combine(x.MountPoint, "filler.bin"), 12, 1 << 20, 1 << 20);
            BtrfsProgs.Sync(x.MountPoint);

            // Each fsync ends an item; the items are physically contiguous, so FIEMAP merges them all.
            string big = Path.Combine(x.MountPoint, "big.img");
            using (var f = new FileStream(big, FileMode.CreateNew, FileAccess.Write))
            {
                byte[] block = FileBuilder.RandomBytes(1 << 20, 5);
                for (int i = 0; i < 200; i++)
                {
                    block[0] = (byte)i;
                    f.Write(block);
                    f.Flush(flushToDisk: true);
                }
            }

            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $p", ("p", big));
            Assert.Empty(r.Errors);
            Assert.Single(r.Objects<FileExtent>());
            Assert.Equal(1, Filefrag.Found(big));
            List<BtrfsExtentItem> items = SameAsDumpTree(x, big);
            Assert.Equal(200, items.Count);
            Assert.All(items, i => Assert.Equal(1L << 20, i.Length));
        }

        [SkippableFact]
        public void ItemsBeyondOneSearchBufferArePagedInOrder()
        {
            // 6,000 items of 85 bytes each (header and item) need two 256 KiB search buffers.
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "512M");
            string path = Path.Combine(x.MountPoint, "many.bin");
            FileBuilder.Chunks(path, 6000, 4096, 8192, fsyncEach: false);
            List<BtrfsExtentItem> items = SameAsDumpTree(x, path);
            Assert.Equal(6000, items.Count);
            Assert.Equal(Enumerable.Range(0, 6000).Select(i => i * 8192L), items.Select(i => i.LogicalOffset));
        }

        [SkippableFact]
        public void OffsetAndLengthSelectTheOverlappingItemsWithTheirFileIndex()
        {
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            string path = Path.Combine(x.MountPoint, "chunks.bin");
            FileBuilder.Chunks(path, 6, 64 << 10, 128 << 10);
            List<BtrfsExtentItem> all = Exact(path);
            Assert.Equal(6, all.Count);

            // [200 KiB, 200 KiB + 100 KiB) overlaps only the chunk at 256 KiB; a range inside a chunk gives that chunk.
            List<BtrfsExtentItem> some = Exact(path, "-Offset 200KB -Length 100KB");
            BtrfsExtentItem one = Assert.Single(some);
            Assert.Equal((2, 256L << 10), (one.Index, one.LogicalOffset));
            Assert.Equal(new long[] { 3, 4, 5 }, Exact(path, "-Offset 400KB").Select(i => i.Index));
            Assert.Equal(new long[] { 0 }, Exact(path, "-Offset 10KB -Length 1").Select(i => i.Index));
        }
    }
}
