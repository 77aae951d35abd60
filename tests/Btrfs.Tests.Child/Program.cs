// A child process for the fault tests: it runs one Core operation on a file and, once a given number of
// bytes is done, prints "paused" and waits, so the test can kill it with SIGKILL at a known point.
//   Btrfs.Tests.Child convert-to-nocow <path> <pause-after-bytes>
//   Btrfs.Tests.Child convert-to-nocow-named <path> <pause-after-bytes>   (a hidden named temporary file, as without O_TMPFILE)
//   Btrfs.Tests.Child convert-to-nocow-exchanged <path> 0   (pauses just after the exchange, in the grace: prints "exchanged <hidden name>")
//   Btrfs.Tests.Child convert-to-nocow-linked-exchanged <path> 0   (as above, for a file with other hard links: -Force)
//   Btrfs.Tests.Child relink-before-exchange <path> <other name>   (converts <path>, a file with other hard links, then
//       pauses just before <other name> is made a link of the converted file: prints "linking <hidden name>")
//   Btrfs.Tests.Child defrag <path> <pause-after-bytes>
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Btrfs.Tests.Child
{
    using System;
    using System.Globalization;
    using System.Threading;
    using Btrfs.Core;

    public static class Program
    {
        public static int Main(string[] args)
        {
            if (args.Length != 3 || args[0] is not ("convert-to-nocow" or "convert-to-nocow-named" or "convert-to-nocow-exchanged" or "convert-to-nocow-linked-exchanged" or "relink-before-exchange" or "defrag"))
            {
                Console.Error.WriteLine("usage: Btrfs.Tests.Child convert-to-nocow|defrag <path> <pause-after-bytes>");
                return 2;
            }

            if (args[0] == "relink-before-exchange")
            {
                Console.WriteLine("ready");
                Relink(args[1], args[2]);
                Console.WriteLine("done");
                return 0;
            }

            long pauseAfter = long.Parse(args[2], CultureInfo.InvariantCulture);
            void PauseAt(long done)
            {
                if (done >= pauseAfter)
                {
                    Console.WriteLine("paused " + done.ToString(CultureInfo.InvariantCulture));
                    Thread.Sleep(Timeout.Infinite);
                }
            }

            Console.WriteLine("ready");
            if (args[0] == "defrag")
            {
                using Defragmenter d = Defragmenter.Prepare(args[1], new DefragOptions());
                Console.WriteLine(d.SkipReason is null ? "planned" : "skipped " + d.SkipReason);
                d.Run(PauseAt);
            }
            else
            {
                var options = new NoCowConversionOptions
                {
                    ForceNamedTemporary = args[0] == "convert-to-nocow-named",
                    AllowHardLinks = args[0] == "convert-to-nocow-linked-exchanged",
                    Exchange = args[0] is not ("convert-to-nocow-exchanged" or "convert-to-nocow-linked-exchanged") ? null : new ExchangeHooks
                    {
                        AfterExchange = hidden =>
                        {
                            Console.WriteLine("exchanged " + hidden);
                            Thread.Sleep(Timeout.Infinite);
                        },
                    },
                };
                using NoCowConversion conversion = NoCowConversion.Prepare(args[1], toNoCow: true, options);
                conversion.Run(args[0] is "convert-to-nocow-exchanged" or "convert-to-nocow-linked-exchanged" ? _ => { } : PauseAt);
            }

            Console.WriteLine("done");
            return 0;
        }

        /// <summary>As ConvertTo-NoCow -Force with both names: converts <paramref name="path"/>, then makes <paramref name="other"/> a link of the result, pausing before the exchange.</summary>
        private static void Relink(string path, string other)
        {
            var session = new RewriteSession();
            ConvertedLink twin;
            using (NoCowConversion first = NoCowConversion.Prepare(path, toNoCow: true, new NoCowConversionOptions { AllowHardLinks = true }))
            using (PendingReplacement pending = first.Start(session, null, CancellationToken.None))
            {
                first.Complete(pending);
                twin = new ConvertedLink(path, first.OriginalNow(), pending.Copy);
            }

            var options = new NoCowConversionOptions
            {
                LinkTo = twin,
                Exchange = new ExchangeHooks
                {
                    BeforeExchange = hidden =>
                    {
                        Console.WriteLine("linking " + hidden);
                        Thread.Sleep(Timeout.Infinite);
                    },
                },
            };
            using NoCowConversion second = NoCowConversion.Prepare(other, toNoCow: true, options);
            using PendingReplacement linked = second.StartRelink(session, CancellationToken.None);
            second.Complete(linked);
        }
    }
}
