namespace Btrfs.Core
{
    using System;
    using System.Buffers.Binary;
    using System.Text;
    using Btrfs.Kernel;

    /// <summary>
    /// The mkswap header (union swap_header in include/linux/swap.h): in the first page, version at
    /// byte 1024, last_page at 1028, nr_badpages at 1032, the UUID at 1036, the label at 1052, and
    /// "SWAPSPACE2" in the page's last 10 bytes. The kernel
    /// (read_swap_header) also takes a header written on a machine of the other byte order.
    /// </summary>
    public sealed class SwapHeader
    {
        /// <summary>The signature of a version 1 swap area.</summary>
        public const string Signature = "SWAPSPACE2";

        /// <summary>The largest last_page mkswap writes (it cuts a larger area there).</summary>
        internal const uint MaximumLastPage = 0xFFFFFFFE;

        private SwapHeader(uint version, uint lastPage, uint badPages, Guid uuid, string label)
        {
            Version = version;
            LastPage = lastPage;
            BadPages = badPages;
            Uuid = uuid;
            Label = label;
        }

        /// <summary>
        /// Pages the header lists as bad (nr_badpages; mkswap -c writes them). swapon refuses a swapfile (not a swap
        /// partition) that lists any, whichever pages they are (EINVAL; seen on Linux 6.18 on btrfs and ext4).
        /// </summary>
        public uint BadPages { get; }

        /// <summary>The header version (1 for every swap area mkswap makes).</summary>
        public uint Version { get; }

        /// <summary>The last usable page: the area is LastPage + 1 pages.</summary>
        public uint LastPage { get; }

        /// <summary>The area's UUID, as blkid shows it.</summary>
        public Guid Uuid { get; }

        /// <summary>The area's label (up to 16 bytes), as swaplabel shows it.</summary>
        public string Label { get; }

        /// <summary>Parses the first page; null when it has no "SWAPSPACE2" signature.</summary>
        public static SwapHeader? Parse(ReadOnlySpan<byte> page)
        {
            if (page.Length < 4096 || !page[^10..].SequenceEqual(Encoding.ASCII.GetBytes(Signature)))
            {
                return null;
            }

            // A header of the other byte order is read as the kernel reads it: swapped, when that makes its version 1.
            bool swapped = BinaryPrimitives.ReadUInt32LittleEndian(page[1024..]) != 1 && BinaryPrimitives.ReadUInt32BigEndian(page[1024..]) == 1;
            uint version = Word(page, 1024, swapped);
            uint last = Word(page, 1028, swapped);
            uint bad = Word(page, 1032, swapped);
            var uuid = new Guid(page.Slice(1036, 16), bigEndian: true);
            ReadOnlySpan<byte> vol = page.Slice(1052, 16);
            int end = vol.IndexOf((byte)0);
            string label = Encoding.UTF8.GetString(end < 0 ? vol : vol[..end]);
            return new SwapHeader(version, last, bad, uuid, label);
        }

        private static uint Word(ReadOnlySpan<byte> page, int at, bool swapped) =>
            swapped ? BinaryPrimitives.ReadUInt32BigEndian(page[at..]) : BinaryPrimitives.ReadUInt32LittleEndian(page[at..]);

        /// <summary>Builds the first page of a swap area of <paramref name="pages"/> pages, as mkswap does.</summary>
        internal static byte[] Build(int pageSize, long pages, Guid uuid, string? label)
        {
            byte[] page = new byte[pageSize];
            BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(1024), 1);
            BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(1028), checked((uint)(pages - 1)));
            BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(1032), 0);
            uuid.TryWriteBytes(page.AsSpan(1036, 16), bigEndian: true, out _);
            if (!string.IsNullOrEmpty(label))
            {
                byte[] l = Encoding.UTF8.GetBytes(label);
                l.AsSpan(0, Math.Min(l.Length, 16)).CopyTo(page.AsSpan(1052, 16));
            }

            Encoding.ASCII.GetBytes(Signature).CopyTo(page.AsSpan(pageSize - 10));
            return page;
        }
    }
}
