#include "lib/nat/path_mtu.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace weft::nat {
namespace {

// A path that carries datagrams up to `limit` bytes, and the clock. Probes are answered
// on the next step (100 ms) when they fit.
struct Sim {
  PathMtu mtu;
  int limit;
  int64_t now = 0;
  int probes = 0;
  int last_probe = 0;
  std::optional<int> in_flight;

  explicit Sim(int ceiling, int limit) : mtu(ceiling), limit(limit) {}
  // A new path, which then carries a handshake back.
  void NewPath() { Carried(mtu, now); }
  static void Carried(PathMtu& m, int64_t now) {
    m.PathChanged(now);
    m.Observe(148, 92, now);
    m.Observe(148, 184, now);
  }
  void Step() {
    now += 100;
    if (in_flight) mtu.Answered(*in_flight, now);
    in_flight.reset();
    if (auto s = mtu.Tick(now)) {
      ++probes;
      last_probe = *s;
      if (*s <= limit) in_flight = *s;
    }
  }
  // Steps until the search is over (bounded); returns the time it took.
  int64_t Settle(int64_t max_ms = 60000) {
    const int64_t start = now;
    Step();
    while (mtu.searching() && now - start < max_ms) Step();
    return now - start;
  }
};

TEST(PathMtuTest, CleanPathTakesOneProbe) {
  Sim s(1420, 1500);
  s.NewPath();
  s.Settle();
  EXPECT_EQ(s.mtu.mtu(), 1420);
  EXPECT_EQ(s.probes, 1);
  // Nothing more at rest: at the ceiling there is nothing to raise.
  for (int i = 0; i < 36000; ++i) s.Step();  // an hour
  EXPECT_EQ(s.probes, 1);
}

// The fragmentation band (1232-1280: their DF is cleared, so a narrow path would pass
// them fragmented) is never probed: a path of 1250 is found at 1216, one of 1300 at 1296.
TEST(PathMtuTest, TheFragmentationBandIsNeverProbed) {
  for (const auto& [limit, found] : {std::pair{1250, 1216}, {1280, 1216}, {1300, 1296}, {1220, 1216}}) {
    SCOPED_TRACE(limit);
    Sim s(1420, limit);
    s.NewPath();
    for (int i = 0; i < 600 && (s.mtu.searching() || s.probes == 0); ++i) {
      s.Step();
      EXPECT_FALSE(s.last_probe > 1216 && s.last_probe <= 1280) << s.last_probe;
    }
    EXPECT_EQ(s.mtu.mtu(), found);
  }
}

TEST(PathMtuTest, ANewPathIsProbedOnceItCarriesSomethingBack) {
  PathMtu m(1420);
  m.Observe(0, 0, 0);
  m.PathChanged(0);
  for (int64_t t = 0; t < 5000; t += 100) {
    m.Observe(148 * (t / 1000 + 1), 0, t);  // handshakes out, nothing back: a relay still binding
    EXPECT_FALSE(m.Tick(t).has_value()) << t;
  }
  m.Observe(1000, 92, 5000);
  EXPECT_EQ(m.Tick(5000), 1420);
}

TEST(PathMtuTest, PathThatCarriesNothingEndsTheSearchAtTheFloor) {
  Sim s(1420, 1500);
  s.NewPath();
  s.limit = 0;  // it stops right after the handshake
  s.Settle();
  EXPECT_EQ(s.mtu.mtu(), 0);
  EXPECT_EQ(s.probes, 4);  // the ceiling, then the floor (twice each): no bisecting into nothing
  EXPECT_EQ(s.last_probe, 1024);
}

TEST(PathMtuTest, APeerThatNeverAnswersIsAskedLessAndLess) {
  Sim s(1420, 1500);
  s.NewPath();
  s.limit = 0;  // an agent that does not probe: nothing ever answers
  for (int i = 0; i < 36000; ++i) s.Step();  // an hour
  // Doubling from 5 s to 10 min: 9 searches of 4 probes in the first ~21 min, then one
  // every 10 min; 1,420-byte probes, well under 1 kbit/s over the hour.
  EXPECT_LE(s.probes, 4 * 14);
  EXPECT_LT(s.probes * 1420 * 8 / 3600, 1000);
  EXPECT_EQ(s.mtu.mtu(), 0);
}

TEST(PathMtuTest, BisectsBelowALowWan) {
  // A 1400 WAN under WireGuard over IPv4 (60 bytes): datagrams up to 1340 pass the tunnel.
  Sim s(1420, 1340);
  s.NewPath();
  const int64_t took = s.Settle();
  EXPECT_EQ(s.mtu.mtu(), 1328);  // the largest multiple of 16 that fits
  EXPECT_LE(took, 5000);
  EXPECT_LE(s.probes, 12);
  EXPECT_NE(s.mtu.reason().find("larger probes lost"), std::string::npos) << s.mtu.reason();
}

TEST(PathMtuTest, EveryWanOfTheLabIsFound) {
  for (int wan : {1280, 1380, 1460, 1492}) {
    SCOPED_TRACE(wan);
    Sim s(1420, wan - 60);
    s.NewPath();
    EXPECT_LE(s.Settle(), 6000);
    EXPECT_LE(s.mtu.mtu(), wan - 60);
    EXPECT_GT(s.mtu.mtu(), wan - 60 - 16);
  }
}

TEST(PathMtuTest, AnUnansweredSearchChangesNothingAndRetries) {
  Sim s(1420, 1500);
  s.NewPath();
  s.Settle();
  ASSERT_EQ(s.mtu.mtu(), 1420);
  s.limit = 0;  // the path goes down
  s.NewPath();
  s.Settle();
  EXPECT_EQ(s.mtu.mtu(), 1420);  // a dead path is not a small one
  EXPECT_NE(s.mtu.reason().find("no probe answered"), std::string::npos);
  s.limit = 1500;
  const int before = s.probes;
  for (int i = 0; i < 60; ++i) s.Step();  // 6 s: retried once
  EXPECT_EQ(s.probes, before + 1);
  EXPECT_FALSE(s.mtu.searching());
}

TEST(PathMtuTest, BlackholeMidTransferIsFoundWithinTenSeconds) {
  Sim s(1420, 1500);
  s.NewPath();
  s.Settle();
  ASSERT_EQ(s.mtu.mtu(), 1420);
  uint64_t tx = 1000000, rx = 50000;
  s.mtu.Observe(tx, rx, s.now);
  s.limit = 1320;  // the link shrinks: full-size data vanishes, ACKs stop
  const int64_t start = s.now;
  while (s.now - start < 15000 && s.mtu.mtu() == 1420) {
    tx += 1452;  // a retransmission now and then
    s.mtu.Observe(tx, rx, s.now);
    s.Step();
  }
  EXPECT_EQ(s.mtu.mtu(), 1312);
  EXPECT_LE(s.now - start, 10000);
  EXPECT_NE(s.mtu.reason().find("traffic went unanswered"), std::string::npos) << s.mtu.reason();
}

TEST(PathMtuTest, BusyAndIdlePairsAreNotProbed) {
  Sim s(1420, 1500);
  s.NewPath();
  s.Settle();
  const int after_search = s.probes;
  uint64_t tx = 0, rx = 0;
  // Busy both ways for a minute, then an hour of keepalives one way only (32 bytes).
  for (int i = 0; i < 600; ++i, s.Step()) s.mtu.Observe(tx += 100000, rx += 5000, s.now);
  for (int i = 0; i < 36000; ++i, s.Step()) {
    if (i % 250 == 0) tx += 32;
    s.mtu.Observe(tx, rx, s.now);
  }
  EXPECT_EQ(s.probes, after_search);
}

TEST(PathMtuTest, OneWayStreamConfirmsAtMostEveryFiveSeconds) {
  Sim s(1420, 1500);
  s.NewPath();
  s.Settle();
  const int after_search = s.probes;
  uint64_t tx = 0;
  for (int i = 0; i < 600; ++i, s.Step()) s.mtu.Observe(tx += 20000, 0, s.now);  // 60 s, nothing back
  EXPECT_LE(s.probes - after_search, 12);
  EXPECT_EQ(s.mtu.mtu(), 1420);
}

TEST(PathMtuTest, RaisedAgainWhenThePathGrows) {
  Sim s(1420, 1340);
  s.NewPath();
  s.Settle();
  ASSERT_EQ(s.mtu.mtu(), 1328);
  s.limit = 1500;
  for (int i = 0; i < 5990; ++i) s.Step();  // just under 10 minutes: still the old size
  EXPECT_EQ(s.mtu.mtu(), 1328);
  for (int i = 0; i < 30; ++i) s.Step();
  EXPECT_EQ(s.mtu.mtu(), 1420);
}

TEST(PathMtuTest, AnswersNotAskedForAreIgnored) {
  PathMtu m(1420);
  m.Answered(1420, 0);  // not searching
  EXPECT_EQ(m.mtu(), 0);
  Sim::Carried(m, 0);
  ASSERT_EQ(m.Tick(0), 1420);
  m.Answered(1300, 10);  // not a candidate
  m.Answered(9999, 10);
  EXPECT_TRUE(m.searching());
  m.Answered(1420, 20);
  EXPECT_EQ(m.mtu(), 1420);
}

TEST(PathMtuTest, ALocalSendFailureIsTooBigAtOnce) {
  PathMtu m(1420);
  Sim::Carried(m, 0);
  ASSERT_EQ(m.Tick(0), 1420);
  m.SendFailed(1420, 1);
  auto next = m.Tick(2);
  ASSERT_TRUE(next.has_value());
  EXPECT_LT(*next, 1420);
}

TEST(PathMtuTest, CeilingBelowTheFloorIsTheOnlyCandidate) {
  Sim s(1200, 1500);
  s.NewPath();
  s.Settle();
  EXPECT_EQ(s.mtu.mtu(), 1200);
  s.mtu.SetCeiling(1420, s.now);  // the device grew: searched again
  s.Settle();
  EXPECT_EQ(s.mtu.mtu(), 1420);
}

}  // namespace
}  // namespace weft::nat
