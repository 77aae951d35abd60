// A child process for the fault tests: it runs one Core operation on a file and, once a given number of
// bytes is done, prints "paused" and waits, so the test can kill it with SIGKILL at a known point.
//   Btrfs.Tests.Child convert-to-nocow <path> <pause-after-bytes>
//   Btrfs.Tests.Child convert-to-nocow-named <path> <pause-after-bytes>   (a hidden named temporary file, as without O_TMPFILE)
//   Btrfs.Tests.Child convert-to-nocow-exchanged <path> 0   (pauses just after the exchange, in the grace: prints "exchanged <hidden name>")
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
            if (args.Length != 3 || args[0] is not ("convert-to-nocow" or "convert-to-nocow-named" or "convert-to-nocow-exchanged" or "defrag"))
            {
                Console.Error.WriteLine("usage: Btrfs.Tests.Child convert-to-nocow|defrag <path> <pause-after-bytes>");
                return 2;
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
                    Exchange = args[0] != "convert-to-nocow-exchanged" ? null : new ExchangeHooks
                    {
                        AfterExchange = hidden =>
                        {
                            Console.WriteLine("exchanged " + hidden);
                            Thread.Sleep(Timeout.Infinite);
                        },
                    },
                };
                using NoCowConversion conversion = NoCowConversion.Prepare(args[1], toNoCow: true, options);
                conversion.Run(args[0] == "convert-to-nocow-exchanged" ? _ => { } : PauseAt);
            }

            Console.WriteLine("done");
            return 0;
        }
    }
}
