namespace Btrfs.Kernel
{
    using System;
    using System.Runtime.InteropServices;

    /// <summary>
    /// Native memory aligned to 4 KiB, for reads with O_DIRECT (which need an aligned buffer) and the copy's
    /// buffers; freed by <see cref="Dispose"/>. Not for sharing between threads while it is disposed.
    /// </summary>
    internal sealed unsafe class AlignedBuffer : IDisposable
    {
        private byte* data;

        internal AlignedBuffer(int length)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
            data = (byte*)NativeMemory.AlignedAlloc((nuint)length, 4096);
            Length = length;
        }

        internal int Length { get; }

        /// <summary>The memory, for the calls of this layer that take a pointer.</summary>
        internal byte* Pointer
        {
            get
            {
                ObjectDisposedException.ThrowIf(data == null, this);
                return data;
            }
        }

        internal Span<byte> Span
        {
            get
            {
                ObjectDisposedException.ThrowIf(data == null, this);
                return new Span<byte>(data, Length);
            }
        }

        public void Dispose()
        {
            if (data != null)
            {
                NativeMemory.AlignedFree(data);
                data = null;
            }
        }
    }
}
