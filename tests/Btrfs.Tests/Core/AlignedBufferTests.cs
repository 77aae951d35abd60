namespace Btrfs.Tests
{
    using System.Linq;
    using Btrfs.Kernel;
    using Xunit;

    /// <summary>The copy's buffers: memory given back is used again (a fresh page faults on its first touch), within a bound.</summary>
    public class AlignedBufferTests
    {
        [Fact]
        public unsafe void AGivenBackBufferIsUsedAgainAndAtMostTwoOfASizeAreKept()
        {
            const int Size = 3 * 4096 + 4096 * 7; // a size no other code asks for
            AlignedBuffer[] three = { AlignedBuffer.Rent(Size), AlignedBuffer.Rent(Size), AlignedBuffer.Rent(Size) };
            nint[] memory = three.Select(b => (nint)b.Pointer).ToArray();
            Assert.Equal(0, AlignedBuffer.KeptOf(Size));
            Assert.All(three, b => Assert.True(((nint)b.Pointer & 4095) == 0)); // aligned for O_DIRECT
            foreach (AlignedBuffer b in three)
            {
                b.Dispose();
            }

            Assert.Equal(AlignedBuffer.KeptPerSize, AlignedBuffer.KeptOf(Size));
            using AlignedBuffer again = AlignedBuffer.Rent(Size);
            Assert.Contains((nint)again.Pointer, memory);
            Assert.Equal(AlignedBuffer.KeptPerSize - 1, AlignedBuffer.KeptOf(Size));
            Assert.Throws<System.ObjectDisposedException>(() => three[0].Span.Length);

            // Larger than the copy's chunk: never kept.
            AlignedBuffer big = AlignedBuffer.Rent(AlignedBuffer.LargestKept + 4096);
            big.Dispose();
            Assert.Equal(0, AlignedBuffer.KeptOf(AlignedBuffer.LargestKept + 4096));
        }
    }
}
