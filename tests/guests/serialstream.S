/* serialburst.S writing its pattern forever, for a 'quit' on the control
 * socket while the guest writes. */
#define SERIAL_STREAM 1
#include "serialburst.S"
