/* fbanim: fbpattern.S's picture, then its palette turned forever (a
 * full-screen change at every step), for tests/bench/console-fps.sh. */
#define FB_ANIMATE 1
#include "fbpattern.S"
