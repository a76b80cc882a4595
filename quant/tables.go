package quant

import (
	"math"
	"sort"
)

// nf4Code is the bitsandbytes NF4 table (create_normal_map with
// use_extra_value=True), indexed by the 4-bit code; ascending.
var nf4Code = [16]float32{
	-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
	-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
	0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
	0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
}

// NF4Code returns a copy of the 16 NF4 code values (bitsandbytes quant_map).
func NF4Code() [16]float32 { return nf4Code }

// dynamicMap is bitsandbytes' create_dynamic_map(signed=True,
// max_exponent_bits=7, total_bits=8), the code book of the double-quantized
// block scales.
var dynamicMap = buildDynamicMap()

// DynamicMap returns a copy of the signed 8-bit dynamic map
// (bitsandbytes nested_quant_map).
func DynamicMap() [256]float32 { return dynamicMap }

// buildDynamicMap follows create_dynamic_map in float32 arithmetic, as torch
// evaluates it: for exponent i in 0..6, the midpoints of
// linspace(0.1, 1, 2^i+1) scaled by 10^(i-6), both signs, plus 0 and 1.
func buildDynamicMap() [256]float32 {
	var data []float32
	for i := 0; i < 7; i++ {
		b := linspace32(0.1, 1, (1<<i)+1)
		scale := float32(math.Pow10(i - 6))
		for j := 0; j+1 < len(b); j++ {
			mean := (b[j] + b[j+1]) / 2
			data = append(data, scale*mean, -scale*mean)
		}
	}
	data = append(data, 0, 1)
	sort.Slice(data, func(a, b int) bool { return data[a] < data[b] })
	var m [256]float32
	copy(m[:], data)
	return m
}

// linspace32 is torch.linspace for float32 on the CPU: the first half counts
// up from start, the second half counts down from end, both in float32.
func linspace32(start, end float32, steps int) []float32 {
	out := make([]float32, steps)
	step := (end - start) / float32(steps-1)
	half := steps / 2
	for i := range out {
		if i < half {
			out[i] = start + step*float32(i)
		} else {
			out[i] = end - step*float32(steps-i-1)
		}
	}
	return out
}
