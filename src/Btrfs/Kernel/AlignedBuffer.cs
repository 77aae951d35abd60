namespace Btrfs.Kernel
{
    using System;
    using System.Collections.Generic;
    using System.Runtime.InteropServices;
    using System.Threading;

    /// <summary>
    /// Native memory aligned to 4 KiB, for reads with O_DIRECT (which need an aligned buffer) and the copy's
    /// buffers; given back by <see cref="Dispose"/>. Not for sharing between threads while it is disposed.
    /// <para>
    /// <see cref="Rent"/> takes the memory of a buffer of the same size given back earlier, where there is
    /// one: the first touch of fresh memory is a page fault per page, and a copy of many small files paid for
    /// it on every file (reading 40 files of 4 MiB into a fresh mapping each took 0.80 s on this machine's
    /// virtual machine, into one kept mapping 0.19 s; the page faults happen inside the read). At most
    /// <see cref="KeptPerSize"/> buffers of each size up to <see cref="LargestKept"/> are kept, and they are
    /// freed once unused for <see cref="KeptFor"/> (looked at every <see cref="KeptFor"/>: 10 to 20 s after the
    /// last use), so a session holds no memory for a copy long done.
    /// </para>
    /// </summary>
    internal sealed unsafe class AlignedBuffer : IDisposable
    {
        /// <summary>Buffers of one size kept for the next copy (a copy reads into two).</summary>
        internal const int KeptPerSize = 2;

        /// <summary>The largest buffer kept (the copy's chunk).</summary>
        internal const int LargestKept = 4 << 20;

        /// <summary>How long kept buffers wait for the next copy before they are freed.</summary>
        internal static readonly TimeSpan KeptFor = TimeSpan.FromSeconds(10);

        private static readonly object Pool = new();
        private static readonly Dictionary<int, Stack<nint>> Kept = new();
        private static Timer? release;
        private static long lastUse;

        private nint data; // a byte*, as nint so Dispose can take it atomically

        /// <summary>New memory of <paramref name="length"/> bytes (see <see cref="Rent"/> for a buffer that may reuse some); kept like any other when disposed.</summary>
        internal AlignedBuffer(int length)
            : this(length, null)
        {
        }

        private AlignedBuffer(int length, byte* reused)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
            data = (nint)(reused != null ? reused : (byte*)NativeMemory.AlignedAlloc((nuint)length, 4096));
            Length = length;
        }

        internal int Length { get; }

        /// <summary>Buffers of <paramref name="length"/> bytes kept now (for tests).</summary>
        internal static int KeptOf(int length)
        {
            lock (Pool)
            {
                return Kept.TryGetValue(length, out Stack<nint>? stack) ? stack.Count : 0;
            }
        }

        /// <summary>The memory, for the calls of this layer that take a pointer.</summary>
        internal byte* Pointer
        {
            get
            {
                ObjectDisposedException.ThrowIf(data == 0, this);
                return (byte*)data;
            }
        }

        internal Span<byte> Span
        {
            get
            {
                ObjectDisposedException.ThrowIf(data == 0, this);
                return new Span<byte>((byte*)data, Length);
            }
        }

        /// <summary>A buffer of <paramref name="length"/> bytes, on memory a disposed buffer of that size left where there is some (its old contents are still in it).</summary>
        internal static AlignedBuffer Rent(int length)
        {
            lock (Pool)
            {
                lastUse = Environment.TickCount64;
                if (Kept.TryGetValue(length, out Stack<nint>? stack) && stack.TryPop(out nint memory))
                {
                    return new AlignedBuffer(length, (byte*)memory);
                }
            }

            return new AlignedBuffer(length);
        }

        /// <summary>Frees every kept buffer now.</summary>
        internal static void ReleaseKept()
        {
            lock (Pool)
            {
                foreach (Stack<nint> stack in Kept.Values)
                {
                    while (stack.TryPop(out nint memory))
                    {
                        NativeMemory.AlignedFree((void*)memory);
                    }
                }
            }
        }

        public void Dispose()
        {
            byte* memory = (byte*)Interlocked.Exchange(ref data, 0); // given back once, whoever disposes it
            if (memory == null)
            {
                return;
            }

            if (Length <= LargestKept)
            {
                lock (Pool)
                {
                    if (!Kept.TryGetValue(Length, out Stack<nint>? stack))
                    {
                        Kept[Length] = stack = new Stack<nint>(KeptPerSize);
                    }

                    if (stack.Count < KeptPerSize)
                    {
                        stack.Push((nint)memory);
                        lastUse = Environment.TickCount64;
                        release ??= new Timer(_ => ReleaseUnused(), null, KeptFor, KeptFor);
                        return;
                    }
                }
            }

            NativeMemory.AlignedFree(memory);
        }

        /// <summary>The timer: kept buffers not asked for during <see cref="KeptFor"/> are freed (and the timer with them).</summary>
        private static void ReleaseUnused()
        {
            lock (Pool)
            {
                if (Environment.TickCount64 - lastUse < (long)KeptFor.TotalMilliseconds)
                {
                    return;
                }

                ReleaseKept();
                release?.Dispose();
                release = null;
            }
        }
    }
}
